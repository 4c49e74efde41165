// A pump's event history: newest first, a page at a time; each row can show the state then.
import { api } from "./api.js";
import { dateTime, h, note, num, preview, table } from "./dom.js";

const PAGE = 20;

function eventRow(e, onPick) {
  const r = e.data?.reading ?? {};
  return h(
    "tr",
    { dataset: { seq: e.seq } },
    h("td", { class: "num" }, String(e.seq)),
    h("td", {}, dateTime(e.at)),
    h("td", {}, e.type),
    h("td", { class: "num" }, num(r.temperature)),
    h("td", { class: "num" }, num(r.pressure, 2)),
    h("td", { class: "num" }, num(r.outsideTemperature)),
    h("td", { title: preview(e.data) }, r.time ? dateTime(r.time) : "–"),
    h("td", {}, h("button", { type: "button", class: "link", onclick: () => onPick(e.seq) }, "State then")),
  );
}

/**
 * The history of the pump at `path` (`/pumps/<id>`). `onPick(version)` runs when a row's
 * "State then" is pressed. Call `latest(version)` with each new version of the pump.
 */
export function pumpHistory(path, { onPick }) {
  const body = h("tbody");
  const info = h("span", { class: "muted" });
  const newer = h("button", { type: "button" }, "← Newer");
  const older = h("button", { type: "button" }, "Older →");
  const status = h("div");
  let top = 0; // newest version on the page shown
  let bottom = 1; // oldest version on the page shown
  let newest = 0; // newest version of the pump
  let gone = false;

  const range = () => `Versions ${bottom}–${top} of ${newest}`;
  /** Shows versions `from`–`upTo` (a whole page below `upTo` unless told): pages never overlap as readings come. */
  const show = async (upTo, from = Math.max(1, upTo - PAGE + 1)) => {
    status.replaceChildren(h("p", { class: "muted" }, "Loading events…"));
    try {
      const res = await api(`${path}/events?from=${from}&limit=${upTo - from + 1}`);
      if (gone) return;
      top = upTo;
      bottom = from;
      // Where old events were trimmed, the answer starts at the oldest kept one, maybe past this page.
      const events = res.events.filter((e) => e.seq <= upTo);
      body.replaceChildren(...events.slice().reverse().map((e) => eventRow(e, onPick)));
      info.textContent = range();
      newer.disabled = upTo >= newest;
      const trimmed = (res.events[0]?.seq ?? Infinity) > from;
      older.disabled = from <= 1 || trimmed;
      status.replaceChildren(
        ...(trimmed
          ? [note("empty", "Older events are no longer kept (READING_RETENTION); the state still counts them.")]
          : []),
      );
    } catch (err) {
      if (!gone) status.replaceChildren(note("error", `Cannot load the history: ${err.message}`));
    }
  };
  // Newer starts right above the page shown (the newest page may be short); older ends right below it.
  newer.addEventListener("click", () => show(Math.min(newest, top + PAGE), top + 1));
  older.addEventListener("click", () => show(Math.max(1, bottom - 1)));

  return {
    el: h(
      "section",
      { class: "card" },
      h("h2", {}, "Event history"),
      status,
      table(
        ["#Version", "Recorded", "Event", "#Temperature (°C)", "#Pressure (bar)", "#Outside (°C)", "Device time", ""],
        body,
        { id: "history" },
      ),
      h("div", { class: "pager" }, newer, info, older),
    ),
    /** A newer version exists: the first page follows it; an older page only says so. */
    async latest(version) {
      const atTop = top === newest;
      newest = version;
      if (atTop) return await show(version);
      info.textContent = range();
      newer.disabled = false;
    },
    close() {
      gone = true;
    },
  };
}
