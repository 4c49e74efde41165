// Talking to Sluice: the admin token, JSON calls, and live topics over Server-Sent Events.

const KEY = "sluice.adminToken";

/** The admin token, kept for this tab only (sessionStorage). */
export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error answer of the API (`{"error": {"code", "message"}}`), or an unreachable server (status 0). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A refusal that asking again will not change (a bad id, a missing thing): not retried. */
export const lasting = (err) => err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;

/** Fired on `window` when the token stops working, so the app can ask for it again. */
export const UNAUTHORIZED = "sluice:unauthorized";

/** How often a page reads again: its refresh, and its retry while Sluice does not answer. */
export const RELOAD_MS = 3000;

/**
 * A JSON call with the admin token; throws `ApiError`. `json`: a body that is JSON text already, sent as written
 * (a number such as `1e400` must reach Sluice to be refused, not become `null` on its way).
 */
export async function api(path, { method = "GET", body, json } = {}) {
  if (json !== undefined) body = json;
  else if (body !== undefined) body = JSON.stringify(body);
  let headers;
  try {
    headers = new Headers({ authorization: `Bearer ${token.get() ?? ""}` });
  } catch {
    // A pasted placeholder (`sla_…`) or a typo: no header can carry it, so no server ever saw it.
    const err = new ApiError(401, "unauthorized", "it has characters no token has (an HTTP header cannot carry them)");
    globalThis.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: err }));
    throw err;
  }
  if (body !== undefined) headers.set("content-type", "application/json");
  let res;
  try {
    res = await fetch(path, { method, headers, body });
  } catch {
    throw new ApiError(0, "unreachable", "Sluice is not reachable. Is it running?");
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch { /* not JSON: reported below */ }
  if (!res.ok) {
    const err = new ApiError(
      res.status,
      data?.error?.code ?? `http_${res.status}`,
      data?.error?.message ?? `${res.status} ${res.statusText}`,
    );
    if (res.status === 401) globalThis.dispatchEvent(new CustomEvent(UNAUTHORIZED, { detail: err }));
    throw err;
  }
  return data;
}

// Live state of every open stream, shown as one badge: "live", "connecting", "reconnecting".
const streams = new Map();
const listeners = new Set();

function publishState() {
  const states = [...streams.values()];
  const overall = states.length === 0
    ? null
    : states.includes("reconnecting")
    ? "reconnecting"
    : states.includes("connecting")
    ? "connecting"
    : "live";
  for (const fn of listeners) fn(overall);
}

/** Calls `fn` with "live", "connecting", "reconnecting", or null when nothing is followed. */
export function onLiveState(fn) {
  listeners.add(fn);
  publishState();
  return () => listeners.delete(fn);
}

/**
 * Follows a channel's topic over SSE, read with `fetch` so that the admin token goes in the
 * Authorization header (with EventSource it would have to be in the URL, and so in proxies' access
 * logs). When the stream ends or fails it is opened again after a pause (1 s, doubling up to 30 s)
 * from the last seq seen. `onMessage` gets `{channel, seq, message}`; `onOpen(gap)` runs on each
 * (re)connect, `gap` true when it is a reconnect that could not resume (no `from` and no message seen
 * yet: the server then sends only new messages, so the caller must read again what it shows).
 */
export function follow(channel, { from, onMessage, onOpen } = {}) {
  const id = Symbol(channel);
  let lastSeq = from ? from - 1 : 0;
  let aborter = null;
  let retry = null;
  let delay = 1000;
  let closed = false;
  let opened = false;
  const setState = (state) => {
    if (closed) return;
    streams.set(id, state);
    publishState();
  };
  const again = () => {
    if (closed) return;
    setState("reconnecting");
    retry = setTimeout(open, delay);
    delay = Math.min(delay * 2, 30_000);
  };
  const deliver = (data) => {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof m?.seq === "number") {
      if (m.seq <= lastSeq) return; // already delivered before a reconnect
      lastSeq = m.seq;
    }
    onMessage?.(m);
  };
  const open = async () => {
    aborter = new AbortController();
    const q = new URLSearchParams();
    const resumes = Boolean(from) || lastSeq > 0;
    if (resumes) q.set("from", String(lastSeq + 1));
    try {
      const res = await fetch(`/channels/${encodeURIComponent(channel)}/events?${q}`, {
        headers: { authorization: `Bearer ${token.get() ?? ""}`, accept: "text/event-stream" },
        signal: aborter.signal,
      });
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        api("/admin/channels?limit=1").catch(() => {}); // a refused token signs out (see `api`)
        return again();
      }
      delay = 1000;
      setState("live");
      onOpen?.(opened && !resumes);
      opened = true;
      await readEvents(res.body, deliver);
    } catch {
      // the network dropped, or `close()` aborted the read
    }
    again();
  };
  setState("connecting");
  open();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      aborter?.abort();
      streams.delete(id);
      publishState();
    },
  };
}

/**
 * Reads a `text/event-stream` body to its end, calling `onData` with each message event's data
 * (comments, `id:` and `retry:` lines are not needed here; an `event: error` only says why the
 * server is about to end the stream).
 */
async function readEvents(body, onData) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const lines = block.split("\n");
      if (lines.some((l) => l.startsWith("event:") && l.slice(6).trim() !== "message")) continue;
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(l[5] === " " ? 6 : 5));
      if (data.length > 0) onData(data.join("\n"));
    }
  }
}
