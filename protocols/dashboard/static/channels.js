// Channels: queue depth of each (refreshed every few seconds), and one channel's live messages.
import { api, follow } from "./api.js";
import { clock, h, note, preview, table } from "./dom.js";

const REFRESH_MS = 3000;
const SHOWN = 200;
const SYSTEM = [{ name: "_pumps", system: true, about: "every pump state change (Sluice's own)" }];

const stat = (v) => (typeof v === "number" ? String(v) : "–");

/** Renders the channel list into `root`; returns its clean-up. */
export function channelsView(root) {
  document.title = "Channels · Sluice";
  const tbody = h("tbody");
  const status = h("div", {}, h("p", { class: "muted" }, "Loading channels…"));
  const wrap = h(
    "div",
    { hidden: true },
    table(
      ["Channel", "Ordering", "#Queued", "#Partitions", "#Retrying", "#Topic messages", "Subscribers"],
      tbody,
      { id: "channels" },
    ),
  );
  const updated = h("span", { class: "muted" });
  root.append(h("div", { class: "title" }, h("h1", {}, "Channels"), updated), status, wrap);
  let channels = [];
  let timer = null;
  let gone = false;

  const render = (stats) => {
    tbody.replaceChildren(...[...channels, ...SYSTEM].map((c) => {
      const st = stats.get(c.name);
      const cells = c.system ? [h("td", { colspan: 6, class: "muted" }, c.about)] : [
        h("td", {}, c.ordering),
        h("td", { class: "num", dataset: { field: "queued" } }, st?.error ? "error" : stat(st?.queued)),
        h("td", { class: "num" }, stat(st?.partitions)),
        h("td", { class: "num" }, stat(st?.retrying)),
        h("td", { class: "num" }, stat(st?.messages)),
        h("td", {}, c.subscribers?.length ? c.subscribers.join(", ") : "–"),
      ];
      return h(
        "tr",
        { dataset: { channel: c.name }, title: st?.error ?? "" },
        h("th", { scope: "row" }, h("a", { href: `#/channels/${encodeURIComponent(c.name)}` }, c.name)),
        ...cells,
      );
    }));
  };
  const refresh = async () => {
    const stats = new Map();
    await Promise.all(channels.map(async (c) => {
      try {
        stats.set(c.name, await api(`/admin/channels/${encodeURIComponent(c.name)}/stats`));
      } catch (err) {
        stats.set(c.name, { error: err.message });
      }
    }));
    if (gone) return;
    render(stats);
    updated.textContent = `queue depth as of ${clock()}`;
    timer = setTimeout(refresh, REFRESH_MS);
  };
  (async () => {
    try {
      channels = (await api("/admin/channels")).channels;
      if (gone) return;
      status.replaceChildren();
      wrap.hidden = false;
      render(new Map());
      await refresh();
    } catch (err) {
      status.replaceChildren(note("error", `Cannot load the channels: ${err.message}`));
    }
  })();
  return () => {
    gone = true;
    clearTimeout(timer);
  };
}

/** One channel: its queue depth, a publish form, and its topic's messages as they arrive. */
export function channelView(root, name) {
  document.title = `${name} · Channels · Sluice`;
  const system = name.startsWith("_");
  const stats = h("dl", { class: "stats" });
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
        let body;
        try {
          body = JSON.parse(text.value);
        } catch {
          body = text.value; // a topic message may be plain text
        }
        try {
          const res = await api(`/channels/${encodeURIComponent(name)}/messages`, { method: "POST", body });
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
  const parts = [
    h("div", { class: "title" }, h("a", { href: "#/channels", class: "back" }, "← Channels"), h("h1", {}, name)),
    status,
    system
      ? h("p", { class: "muted" }, "A system channel: it carries Sluice's own messages.")
      : h("section", { class: "card" }, h("h2", {}, "Queue depth"), stats),
    system ? null : h("section", { class: "card" }, publish),
    h("section", { class: "card" }, h("h2", {}, "Live messages"), empty, messages),
  ];
  root.append(...parts.filter(Boolean));

  let timer = null;
  let stream = null;
  let gone = false;
  let missing = false;
  const showStats = (st) => {
    const item = (label, v) => h("div", { class: "stat" }, h("dt", {}, label), h("dd", {}, stat(v)));
    stats.replaceChildren(
      item("Queued tasks", st.queued),
      item("Partitions", st.partitions),
      item("Retrying", st.retrying),
      item("Topic messages", st.messages),
    );
  };
  const refresh = async () => {
    try {
      const st = await api(`/admin/channels/${encodeURIComponent(name)}/stats`);
      if (gone) return null;
      showStats(st);
      status.replaceChildren();
      return st;
    } catch (err) {
      missing = err.status === 404;
      if (!gone) status.replaceChildren(note("error", `Cannot read the channel: ${err.message}`));
      return null;
    } finally {
      if (!gone && !missing) timer = setTimeout(refresh, REFRESH_MS);
    }
  };
  const onMessage = (m) => {
    empty.hidden = true;
    messages.prepend(h(
      "li",
      { dataset: { seq: m.seq } },
      h("span", { class: "seq" }, `#${m.seq}`),
      h("time", {}, clock()),
      h("pre", {}, preview(m.message, 2000)),
    ));
    while (messages.children.length > SHOWN) messages.lastElementChild.remove();
  };
  (async () => {
    // The last 50 messages first, then live.
    const st = system ? null : await refresh();
    if (gone || missing) return;
    const from = st && st.messages > 0 ? Math.max(1, st.messages - 49) : undefined;
    stream = follow(name, { from, onMessage });
  })();
  return () => {
    gone = true;
    clearTimeout(timer);
    stream?.close();
  };
}
