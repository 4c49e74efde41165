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

/** Fired on `window` when the token stops working, so the app can ask for it again. */
export const UNAUTHORIZED = "sluice:unauthorized";

/** A JSON call with the admin token; throws `ApiError`. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { authorization: `Bearer ${token.get() ?? ""}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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
 * Follows a channel's topic over SSE. EventSource reconnects by itself after a network drop and
 * resumes with Last-Event-ID; when it gives up (an error status), this reopens it after a pause
 * from the last seq seen. `onMessage` gets `{channel, seq, message}`; `onOpen` each (re)connect.
 */
export function follow(channel, { from, onMessage, onOpen } = {}) {
  const id = Symbol(channel);
  let lastSeq = from ? from - 1 : 0;
  let es = null;
  let retry = null;
  let delay = 1000;
  let closed = false;
  const setState = (state) => {
    if (closed) return;
    streams.set(id, state);
    publishState();
  };
  const open = () => {
    const q = new URLSearchParams({ token: token.get() ?? "" });
    if (from || lastSeq > 0) q.set("from", String(lastSeq + 1));
    es = new EventSource(`/channels/${encodeURIComponent(channel)}/events?${q}`);
    es.onopen = () => {
      delay = 1000;
      setState("live");
      onOpen?.();
    };
    es.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (typeof m?.seq === "number") {
        // A reconnect repeats the URL's `from`: skip what was already delivered.
        if (m.seq <= lastSeq) return;
        lastSeq = m.seq;
      }
      onMessage?.(m);
    };
    // Also the server's own `event: error` ("too slow"), after which it ends the stream.
    es.addEventListener("error", () => {
      if (closed) return;
      setState("reconnecting");
      if (es.readyState !== EventSource.CLOSED) return;
      // Given up (e.g. a 401 or a 5xx during a restart): check the token, then try again.
      api("/admin/channels").catch(() => {});
      retry = setTimeout(open, delay);
      delay = Math.min(delay * 2, 30_000);
    });
  };
  setState("connecting");
  open();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      es?.close();
      streams.delete(id);
      publishState();
    },
  };
}
