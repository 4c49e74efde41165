// The pumps list: every pump's latest reading and figures, kept current from the `_pumps` topic.
import { api, follow, RELOAD_MS } from "./api.js";
import { agoEl, h, note, num, refreshAgo, table } from "./dom.js";

/** Pump ids in the order people expect: pump-2 before pump-10 (once every page is here). */
const byId = new Intl.Collator(undefined, { numeric: true });
/** Pump ids as the server pages them (KV's order; ids are ASCII), while pages are left: no gap in what is shown. */
const pageOrder = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

const PAGE = 500;

function row(p) {
  const r = p.lastReading ?? {};
  const href = `#/pumps/${encodeURIComponent(p.id)}`;
  return h(
    "tr",
    { dataset: { pumpId: p.id, version: p.version } },
    h("th", { scope: "row" }, h("a", { href }, p.id)),
    h("td", { class: "num", dataset: { field: "temperature" } }, num(r.temperature)),
    h("td", { class: "num", dataset: { field: "pressure" } }, num(r.pressure, 2)),
    h("td", { class: "num", dataset: { field: "outside" } }, num(p.outsideTemperature)),
    h(
      "td",
      { class: "num", dataset: { field: "range" } },
      `${num(p.temperature?.min)} / ${num(p.temperature?.max)} / ${num(p.temperature?.avg)}`,
    ),
    h("td", { class: "num", dataset: { field: "readings" } }, String(p.readings)),
    h("td", { dataset: { field: "last-seen" } }, agoEl(p.lastSeen)),
  );
}

/** Shows where to start when there is no pump yet. */
function emptyState() {
  const origin = location.origin;
  return note(
    "empty",
    h("strong", {}, "No pumps yet — post a reading:"),
    h(
      "pre",
      {},
      `# a device and its token (admin token in $ADMIN)\n` +
        `curl -s -X POST ${origin}/admin/devices -H "Authorization: Bearer $ADMIN" -d '{"id":"pump-1"}'\n\n` +
        `# a reading from that device (its token in $TOKEN)\n` +
        `curl -s -X POST ${origin}/blog/queues/feed -H "Authorization: Bearer $TOKEN" \\\n` +
        `  -d '{"temperature":"21.5","pressure":"1.2","coordinates":"45.50:-73.56"}'`,
    ),
    "The pump appears here as soon as its reading is processed.",
  );
}

/** Renders the pumps list into `root`; returns its clean-up. */
export function pumpsView(root) {
  document.title = "Pumps · Sluice";
  const pumps = new Map();
  const tbody = h("tbody");
  const status = h("div", {}, h("p", { class: "muted" }, "Loading pumps…"));
  const more = h("button", { type: "button", hidden: true }, "Load more pumps");
  const list = h(
    "div",
    { hidden: true },
    table(
      [
        "Pump",
        "#Temperature (°C)",
        "#Pressure (bar)",
        "#Outside (°C)",
        "#Min / max / avg (°C)",
        "#Readings",
        "Last seen",
      ],
      tbody,
      { id: "pumps", class: "pumps" },
    ),
    more,
  );
  const count = h("span", { class: "muted" });
  root.append(h("div", { class: "title" }, h("h1", {}, "Pumps"), count), status, list);

  let loaded = false;
  let next = null;
  /** Every page read: rows go in the people's order, not the pages'. */
  let complete = false;
  const buffered = [];

  /**
   * Adds or updates a pump's row, keeping rows sorted by id; older states are ignored, and so are pumps past the pages
   * read (their page brings them: a row there now would sit after pumps not shown yet).
   */
  const upsert = (p, flash) => {
    if (next !== null && pageOrder(p.id, next) > 0) return;
    const known = pumps.get(p.id);
    if (known && known.version >= p.version) return;
    pumps.set(p.id, p);
    const fresh = row(p);
    if (flash) fresh.classList.add("flash");
    const old = tbody.querySelector(`tr[data-pump-id="${CSS.escape(p.id)}"]`);
    if (old) old.replaceWith(fresh);
    else {
      const compare = complete ? byId.compare : pageOrder;
      const after = [...tbody.children].find((tr) => compare(tr.dataset.pumpId, p.id) > 0);
      tbody.insertBefore(fresh, after ?? null);
    }
  };
  const render = () => {
    count.textContent = pumps.size ? `${pumps.size}${next ? "+" : ""} pump${pumps.size === 1 ? "" : "s"}` : "";
    list.hidden = pumps.size === 0;
    more.hidden = !next;
    if (pumps.size === 0) status.replaceChildren(emptyState());
    else status.replaceChildren();
  };
  let loading = false, retry = null, gone = false, pages = 0;
  const read = (after) => api(`/pumps?limit=${PAGE}${after ? `&after=${encodeURIComponent(after)}` : ""}`);
  const load = async () => {
    if (loading) return;
    loading = true;
    clearTimeout(retry);
    try {
      const page = await read(next);
      next = page.next; // first: the page's pumps are up to it
      for (const p of page.pumps) upsert(p, false);
      if (!next && !complete) {
        complete = true;
        tbody.append(...[...tbody.children].sort((a, b) => byId.compare(a.dataset.pumpId, b.dataset.pumpId)));
      }
      pages++;
      loaded = true;
      for (const p of buffered.splice(0)) upsert(p, true);
      render();
    } catch (err) {
      const again = h("button", { type: "button", onclick: () => load() }, "Try again");
      status.replaceChildren(note("error", `Cannot load the pumps: ${err.message} `, again));
      if (!loaded && !gone) retry = setTimeout(load, RELOAD_MS); // the first page, until it comes
    } finally {
      loading = false;
    }
  };
  more.addEventListener("click", () => load());
  /** Reads again the pages shown (all of them when the list was complete): changes the live stream missed. */
  const reread = async () => {
    try {
      let after = null;
      for (let n = 0; n < pages || (!next && after); n++) {
        const page = await read(after);
        if (gone) return;
        for (const p of page.pumps) upsert(p, true);
        after = page.next;
        if (!after) break;
      }
      render();
    } catch (err) {
      if (!gone) status.replaceChildren(note("error", `Cannot read the pumps again: ${err.message}`));
    }
  };

  // Follow first, then load, so no change falls between the two (states carry a version).
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    load();
  };
  const stream = follow("_pumps", {
    // Back after an outage: load what was missed (the whole list when the stream could not resume).
    onOpen: (gap) => loaded ? (gap ? reread() : undefined) : started ? load() : start(),
    onMessage: (m) => {
      const p = m.message;
      if (!p || typeof p.id !== "string") return;
      // Held while a page loads: it may carry an older state of the pump, and the page ends where rows may go.
      if (!loaded || loading) return buffered.push(p);
      upsert(p, true);
      render();
    },
  });
  const fallback = setTimeout(start, 3000); // the list even when the live stream cannot open
  const tick = setInterval(() => refreshAgo(tbody), 5000);
  return () => {
    gone = true;
    stream.close();
    clearTimeout(retry);
    clearTimeout(fallback);
    clearInterval(tick);
  };
}
