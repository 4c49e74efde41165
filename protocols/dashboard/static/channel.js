// One channel: its queue depth, its settings, a publish form, and its topic's messages as they arrive.
import { api, follow, lasting, RELOAD_MS } from "./api.js";
import { channelSettings } from "./channel_settings.js";
import { clock, count, dateTime, h, note, preview, table } from "./dom.js";

const SHOWN = 200;

/** One channel: its queue depth, its settings, a publish form, and its topic's messages as they arrive. */
export function channelView(root, name) {
  document.title = `${name} · Channels · Sluice`;
  const system = name.startsWith("_");
  const stats = h("dl", { class: "stats" });
  const subscribers = h("div", { id: "subscribers" });
  const messages = h("ol", { id: "messages", class: "messages", reversed: true });
  const empty = note("empty", "No messages yet. They appear here as they are published.");
  const publishStatus = h("div");
  const text = h("textarea", { id: "publish-body", rows: 3, spellcheck: false }, '{"hello": "world"}');
  const publish = h(
    "form",
    {
      class: "publish",
      onsubmit: async (e) => {
        e.preventDefault();
        if (text.value.trim() === "") {
          return publishStatus.replaceChildren(note("error", "Not published: write a message first (JSON, or text)."));
        }
        // JSON as written (Sluice checks it); anything else is text, which a topic message may be.
        let json = text.value;
        try {
          JSON.parse(json);
        } catch {
          json = JSON.stringify(text.value);
        }
        try {
          const res = await api(`/channels/${encodeURIComponent(name)}/messages`, { method: "POST", json });
          publishStatus.replaceChildren(note("info", `Published as message ${res.seq}.`));
        } catch (err) {
          publishStatus.replaceChildren(note("error", `Not published: ${err.message}`));
        }
      },
    },
    h("label", { for: "publish-body" }, "Publish a message (JSON, or text) as the admin"),
    text,
    h("button", { type: "submit" }, "Publish"),
    publishStatus,
  );
  const status = h("div");
  // The head is read again at the submit: the form refuses a `from` past it + 1, as the API would.
  const replay = replayForm(name, () => (refresh(), showSettings()), async () => (await refresh())?.messages);
  const settings = h("section", { class: "card" }, h("h2", {}, "Settings"), h("p", { class: "muted" }, "Loading…"));
  const parts = [
    h("div", { class: "title" }, h("a", { href: "#/channels", class: "back" }, "← Channels"), h("h1", {}, name)),
    status,
    system
      ? h("p", { class: "muted" }, "A system channel: it carries Sluice's own messages.")
      : h("section", { class: "card" }, h("h2", {}, "Queue depth"), stats, subscribers, replay),
    system ? null : settings,
    system ? null : h("section", { class: "card" }, publish),
    h("section", { class: "card" }, h("h2", {}, "Live messages"), empty, messages),
  ];
  root.append(...parts.filter(Boolean));

  let timer = null;
  let stream = null;
  let gone = false;
  let missing = false;
  const showStats = (st) => {
    const item = (label, v) => h("div", { class: "stat" }, h("dt", {}, label), h("dd", {}, count(v)));
    stats.replaceChildren(
      item("Queued tasks", st.queued),
      item("Partitions", st.partitions),
      item("Retrying", st.retrying),
      item("Topic messages", st.messages),
    );
    subscribers.replaceChildren(
      ...(st.subscribers?.length
        ? [
          h("h3", {}, "Subscriber scripts"),
          table(
            ["Script", "#Done", "#Behind", "State"],
            h("tbody", {}, st.subscribers.map(subscriberRow)),
          ),
        ]
        : []),
    );
  };
  async function refresh() {
    clearTimeout(timer);
    try {
      const st = await api(`/admin/channels/${encodeURIComponent(name)}/stats`);
      if (gone) return null;
      showStats(st);
      status.replaceChildren();
      return st;
    } catch (err) {
      missing = lasting(err);
      if (gone) return null;
      if (missing) {
        // Never created, or deleted meanwhile (here or elsewhere), or no channel's name: nothing here applies.
        for (const part of parts.slice(2)) part?.remove();
        stream?.close();
        status.replaceChildren(
          err.status === 404
            ? note("empty", `Channel "${name}" does not exist (deleted?). `, backLink())
            : note("error", `No channel can be called "${name}": ${err.message} `, backLink()),
        );
      } else status.replaceChildren(note("error", `Cannot read the channel: ${err.message} (trying again)`));
      return null;
    } finally {
      if (!gone && !missing) timer = setTimeout(refresh, RELOAD_MS);
    }
  }
  /** Messages up to this seq were published before the page opened: their time is not known here. */
  let historyUpTo = 0;
  const onMessage = (m) => {
    empty.hidden = true;
    messages.prepend(h(
      "li",
      { dataset: { seq: m.seq } },
      h("span", { class: "seq" }, `#${m.seq}`),
      m.seq <= historyUpTo
        ? h("time", { title: "published before this page opened" }, "earlier")
        : h("time", {}, clock()),
      h("pre", {}, preview(m.message, 2000)),
    ));
    while (messages.children.length > SHOWN) messages.lastElementChild.remove();
  };
  async function showSettings() {
    try {
      const channel = await api(`/admin/channels/${encodeURIComponent(name)}`);
      if (gone) return;
      settings.replaceChildren(
        h("h2", {}, "Settings"),
        // Saved: the queue depth and subscriber rows follow at once (a subscriber removed or added).
        channelSettings({ channel, onSaved: () => refresh(), onDeleted: () => location.hash = "#/channels" }),
      );
    } catch (err) {
      if (!gone) settings.replaceChildren(h("h2", {}, "Settings"), note("error", `Cannot read them: ${err.message}`));
    }
  }
  if (!system) showSettings();
  (async () => {
    // The last 50 messages first, then live; from 1 on an empty topic, so that a reconnect resumes. A system channel
    // shows no counts, but its count is read once for the same reason (unread, `_pumps` looked empty).
    const st = system
      ? await api(`/admin/channels/${encodeURIComponent(name)}/stats`).catch(() => null)
      : await refresh();
    if (gone || missing) return;
    const from = st ? Math.max(1, st.messages - 49) : undefined;
    historyUpTo = st?.messages ?? 0;
    stream = follow(name, { from, onMessage });
  })();
  return () => {
    gone = true;
    clearTimeout(timer);
    stream?.close();
  };
}

/** What `SCRIPT_PATH` (core/names.ts) accepts: the API refuses anything else. */
const SCRIPT_PATH = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+){0,7}$/;

/**
 * Adds a subscriber script from a given message on: from 1 it replays every message the topic
 * keeps through it (a new version of a script rebuilding its view), then follows new ones.
 * `head()` reads the topic's last message seq (undefined when it cannot): input the API would
 * refuse is refused here, before the confirmation.
 */
function replayForm(name, onAdded, head) {
  const script = h("input", {
    id: "replay-script",
    required: true,
    placeholder: "stats/daily_v2",
    autocomplete: "off",
  });
  const from = h("input", { id: "replay-from", type: "number", min: 1, value: 1, required: true });
  const status = h("div");
  return h(
    "form",
    {
      class: "settings",
      id: "replay",
      onsubmit: async (e) => {
        e.preventDefault();
        const path = script.value.trim();
        const start = Number(from.value);
        status.replaceChildren();
        script.removeAttribute("aria-invalid");
        from.removeAttribute("aria-invalid");
        const refuse = (input, why) => {
          input.setAttribute("aria-invalid", "true");
          status.replaceChildren(note("error", `Not added: ${why}`));
        };
        if (path === "") return refuse(script, "write the script's path first (like stats/daily_v2).");
        if (!SCRIPT_PATH.test(path)) {
          return refuse(script, `"${path}" is not a script path (letters, digits, _ and -, parts joined by /).`);
        }
        if (from.value.trim() === "" || !Number.isSafeInteger(start) || start < 1) {
          return refuse(from, `"${from.value}" is not a message number (a whole number from 1 on).`);
        }
        const last = await head();
        if (last !== undefined && start > last + 1) {
          return refuse(
            from,
            `the topic has ${count(last)} message(s): start from ${last + 1} at most (the next message).`,
          );
        }
        if (!confirm(`Add ${path} as a subscriber and run it over every kept message from #${from.value} on?`)) return;
        try {
          const added = await api(`/admin/channels/${encodeURIComponent(name)}/subscribers`, {
            method: "POST",
            body: { script: path, from: start },
          });
          const waiting = Math.max(0, added.head - added.from + 1);
          status.replaceChildren(
            note("info", `${added.script} added: it runs ${count(waiting)} kept message(s), then new ones.`),
          );
          onAdded();
        } catch (err) {
          status.replaceChildren(note("error", `Not added: ${err.message}`));
        }
      },
    },
    h("h3", {}, "Replay the topic through a script"),
    h(
      "div",
      { class: "field" },
      h("label", { for: "replay-script" }, "Script"),
      script,
      h("small", {}, "added as a subscriber; it writes its own view (documents) beside the others'"),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "replay-from" }, "From message"),
      from,
      h("small", {}, "1: every message still kept (TOPIC_RETENTION)"),
    ),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Add and replay")),
    status,
  );
}

/** A subscriber script's progress through the topic: messages done, left, and a retry under way. */
function subscriberRow(sub) {
  const state = sub.retrying
    ? `retrying message ${sub.retrying.seq} at ${dateTime(sub.retrying.nextAttemptAt)}: ${
      sub.retrying.error ?? "failed"
    }`
    : sub.behind > 0
    ? "working"
    : "up to date";
  return h(
    "tr",
    { dataset: { script: sub.script } },
    h("td", {}, h("code", {}, sub.script)),
    h("td", { class: "num" }, count(sub.done)),
    h("td", { class: "num" }, count(sub.behind)),
    h("td", { class: sub.retrying ? "error-text" : "" }, state),
  );
}

function backLink() {
  return h("a", { href: "#/channels" }, "All channels");
}
