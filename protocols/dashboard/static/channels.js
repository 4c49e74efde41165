// Channels: the list and each one's queue depth, refreshed every few seconds, and a form to create one.
import { api, RELOAD_MS } from "./api.js";
import { channelSettings } from "./channel_settings.js";
import { clock, count, h, note, table } from "./dom.js";

const SYSTEM = [{ name: "_pumps", system: true, about: "every pump state change (Sluice's own)" }];

/** Channel names in the order people expect: ch-2 before ch-10. */
const byName = new Intl.Collator(undefined, { numeric: true });
/** Each channel's counts are one call: with many channels, the list is read less often. */
const CALLS_A_SECOND = 10;
/** Stats asked for at once. */
const STATS_AT_ONCE = 6;

/** Every channel's settings, a page of 1,000 at a time. */
async function allChannels() {
  const all = [];
  for (let after = null;;) {
    const page = await api(`/admin/channels?limit=1000${after === null ? "" : `&after=${encodeURIComponent(after)}`}`);
    all.push(...page.channels);
    if (!page.next) return all;
    after = page.next;
  }
}

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
  const create = h(
    "details",
    { class: "card" },
    h("summary", {}, "New channel"),
    channelSettings({ onSaved: (c) => location.hash = `#/channels/${encodeURIComponent(c.name)}` }),
  );
  root.append(h("div", { class: "title" }, h("h1", {}, "Channels"), updated), status, wrap, create);
  let channels = [];
  let timer = null;
  let gone = false;

  const render = (stats) => {
    tbody.replaceChildren(...[...channels, ...SYSTEM].map((c) => {
      const st = stats.get(c.name);
      const cells = c.system ? [h("td", { colspan: 6, class: "muted" }, c.about)] : [
        h("td", {}, c.ordering, c.paused ? h("span", { class: "muted" }, " · paused") : null),
        h("td", { class: "num", dataset: { field: "queued" } }, st?.error ? "error" : count(st?.queued)),
        h("td", { class: "num" }, count(st?.partitions)),
        h("td", { class: "num" }, count(st?.retrying)),
        h("td", { class: "num" }, count(st?.messages)),
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
  /** Reads the list (channels come and go elsewhere too) and each one's counts; again in a few seconds. */
  const refresh = async () => {
    try {
      channels = (await allChannels()).sort((a, b) => byName.compare(a.name, b.name));
      const stats = new Map();
      // A few at a time: a thousand channels must not be a thousand requests at once (Sluice refuses past its cap).
      const left = [...channels];
      await Promise.all(Array.from({ length: Math.min(STATS_AT_ONCE, left.length) }, async () => {
        for (let c = left.shift(); c; c = left.shift()) {
          try {
            stats.set(c.name, await api(`/admin/channels/${encodeURIComponent(c.name)}/stats`));
          } catch (err) {
            stats.set(c.name, { error: err.message });
          }
        }
      }));
      if (gone) return;
      status.replaceChildren();
      wrap.hidden = false;
      render(stats);
      updated.textContent = `as of ${clock()}`;
    } catch (err) {
      if (gone) return;
      status.replaceChildren(note("error", `Cannot load the channels: ${err.message} (trying again)`));
    } finally {
      if (!gone) timer = setTimeout(refresh, Math.max(RELOAD_MS, (1000 * channels.length) / CALLS_A_SECOND));
    }
  };
  refresh();
  return () => {
    gone = true;
    clearTimeout(timer);
  };
}
