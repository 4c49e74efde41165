// A pump's page: its state, a chart of recent readings, its event history, and time travel.
import { api, follow } from "./api.js";
import { readingsChart } from "./chart.js";
import { agoEl, dateTime, h, note, num, preview, refreshAgo, table } from "./dom.js";

const CHART_POINTS = 200;
const HISTORY_PAGE = 20;

/** A pump state as a grid of figures. */
function stateCards(p, { past = false } = {}) {
  const r = p.lastReading ?? {};
  const t = p.temperature ?? {}, pr = p.pressure ?? {};
  const item = (label, value, field) =>
    h("div", { class: "stat" }, h("dt", {}, label), h("dd", { dataset: { field } }, value));
  return h(
    "dl",
    { class: "stats" },
    item("Version", String(p.version), "version"),
    item("Temperature", `${num(r.temperature)} °C`, "temperature"),
    item("Pressure", `${num(r.pressure, 2)} bar`, "pressure"),
    item("Outside", `${num(p.outsideTemperature)} °C`, "outside"),
    item("Temp. min / max / avg", `${num(t.min)} / ${num(t.max)} / ${num(t.avg)}`, "temperature-range"),
    item("Pressure min / max / avg", `${num(pr.min, 2)} / ${num(pr.max, 2)} / ${num(pr.avg, 2)}`, "pressure-range"),
    item("Readings", String(p.readings), "readings"),
    item("Place", r.coordinates ? `${r.coordinates.lat}, ${r.coordinates.lon}` : "–", "place"),
    item("First seen", dateTime(p.firstSeen), "first-seen"),
    item("Last seen", past ? dateTime(p.lastSeen) : agoEl(p.lastSeen), "last-seen"),
  );
}

/** A reading event as the chart wants it. */
function toReading(e) {
  const r = e.data?.reading;
  if (e.type !== "ReadingRecorded" || !r) return null;
  return { version: e.seq, temperature: r.temperature, pressure: r.pressure, at: e.at };
}

/** Renders pump `id`'s page into `root`; returns its clean-up. */
export function pumpView(root, id) {
  document.title = `${id} · Sluice`;
  const path = `/pumps/${encodeURIComponent(id)}`;
  const summary = h("section", { class: "card" }, h("p", { class: "muted" }, "Loading the pump…"));
  const chartBox = h("div", { id: "chart", class: "chart-box" }, h("p", { class: "muted" }, "Loading readings…"));
  const slider = h("input", { type: "range", id: "tt-range", min: 1, max: 1, value: 1, "aria-label": "Version" });
  const versionInput = h("input", { type: "number", id: "tt-version", min: 1, max: 1, value: 1, inputmode: "numeric" });
  const nowButton = h("button", { type: "button", class: "link" }, "Back to now");
  const ttResult = h("div", { id: "time-travel-state" });
  const historyBody = h("tbody");
  const pageInfo = h("span", { class: "muted" });
  const newer = h("button", { type: "button" }, "← Newer");
  const older = h("button", { type: "button" }, "Older →");
  const historyStatus = h("div");
  const page = h(
    "div",
    { class: "pump-page", hidden: true },
    summary,
    h(
      "section",
      { class: "card" },
      h(
        "h2",
        {},
        "Recent readings ",
        h("span", { class: "legend temperature" }, "temperature °C"),
        h("span", { class: "legend pressure" }, "pressure bar"),
      ),
      chartBox,
    ),
    h(
      "section",
      { class: "card", id: "time-travel" },
      h("h2", {}, "Time travel"),
      h("p", { class: "muted" }, "The state as it was after a chosen version, rebuilt from the event log."),
      h("div", { class: "tt-controls" }, slider, h("label", {}, "Version ", versionInput), nowButton),
      ttResult,
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Event history"),
      historyStatus,
      table(
        ["#Version", "Recorded", "Event", "#Temperature °C", "#Pressure bar", "#Outside °C", "Device time", ""],
        historyBody,
        { id: "history" },
      ),
      h("div", { class: "pager" }, newer, pageInfo, older),
    ),
  );
  const status = h("div");
  root.append(
    h("div", { class: "title" }, h("a", { href: "#/", class: "back" }, "← Pumps"), h("h1", {}, id)),
    status,
    page,
  );

  let current = null; // the latest state
  let readings = []; // chart points, oldest first
  let top = 0; // newest version on the history page shown
  let following = true; // time travel follows the newest version
  let ttAsked = 0;
  let ttTimer = null;
  let gone = false;

  const drawChart = (marker) => {
    if (readings.length === 0) return chartBox.replaceChildren(note("empty", "No readings yet."));
    chartBox.replaceChildren(readingsChart(readings, { marker }));
  };

  const showHistory = async (newest) => {
    const from = Math.max(1, newest - HISTORY_PAGE + 1);
    historyStatus.replaceChildren(h("p", { class: "muted" }, "Loading events…"));
    try {
      const res = await api(`${path}/events?from=${from}&limit=${newest - from + 1}`);
      if (gone) return;
      top = newest;
      historyBody.replaceChildren(
        ...res.events.slice().reverse().map((e) => {
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
            h("td", {}, h("button", { type: "button", class: "link", onclick: () => travel(e.seq) }, "State then")),
          );
        }),
      );
      pageInfo.textContent = `Versions ${from}–${newest} of ${current.version}`;
      newer.disabled = newest >= current.version;
      older.disabled = from <= 1;
      historyStatus.replaceChildren();
    } catch (err) {
      historyStatus.replaceChildren(note("error", `Cannot load the history: ${err.message}`));
    }
  };
  newer.addEventListener("click", () => showHistory(Math.min(current.version, top + HISTORY_PAGE)));
  older.addEventListener("click", () => showHistory(Math.max(HISTORY_PAGE, top - HISTORY_PAGE)));

  /** Shows the state at `version` (time travel); debounced while the slider moves. */
  const travel = (version, { now = false } = {}) => {
    const v = Math.min(Math.max(1, Math.round(Number(version)) || 1), current.version);
    following = now || v === current.version;
    slider.value = String(v);
    versionInput.value = String(v);
    clearTimeout(ttTimer);
    ttTimer = setTimeout(async () => {
      const asked = ++ttAsked;
      ttResult.replaceChildren(h("p", { class: "muted" }, `Rebuilding version ${v}…`));
      try {
        const state = await api(`${path}?at=${v}`);
        if (asked !== ttAsked || gone) return;
        ttResult.replaceChildren(
          h("p", {}, `State at version ${state.version}`, following ? " (now)" : "", ":"),
          stateCards(state, { past: true }),
        );
        ttResult.dataset.version = String(state.version);
        drawChart(following ? undefined : v);
      } catch (err) {
        if (asked === ttAsked) ttResult.replaceChildren(note("error", `Cannot rebuild version ${v}: ${err.message}`));
      }
    }, 150);
  };
  slider.addEventListener("input", () => travel(slider.value));
  versionInput.addEventListener("change", () => travel(versionInput.value));
  nowButton.addEventListener("click", () => travel(current.version, { now: true }));

  const setCurrent = (state) => {
    current = state;
    summary.replaceChildren(h("h2", {}, "Now"), stateCards(state));
    slider.max = versionInput.max = String(state.version);
  };

  const load = async () => {
    try {
      const state = await api(path);
      if (gone) return;
      setCurrent(state);
      const from = Math.max(1, state.version - CHART_POINTS + 1);
      const res = await api(`${path}/events?from=${from}&limit=${CHART_POINTS}`);
      if (gone) return;
      readings = res.events.map(toReading).filter(Boolean);
      page.hidden = false;
      status.replaceChildren();
      drawChart();
      travel(state.version, { now: true });
      await showHistory(state.version);
    } catch (err) {
      status.replaceChildren(
        err.status === 404
          ? note("empty", `Pump "${id}" has no readings yet. This page fills in when its first reading arrives.`)
          : note("error", `Cannot load the pump: ${err.message}`),
      );
    }
  };

  // Newer states arrive on `_pumps`: add their events to the chart and the first history page.
  let catchingUp = Promise.resolve();
  let loading = null;
  const update = async (state) => {
    await loading;
    if (!current) return (loading = load());
    if (state.version <= current.version) return;
    const last = readings.at(-1)?.version ?? 0;
    const res = await api(`${path}/events?from=${last + 1}&limit=${Math.min(1000, state.version - last)}`);
    if (gone) return;
    const atTop = top === current.version;
    setCurrent(state);
    readings = [...readings, ...res.events.map(toReading).filter(Boolean)].slice(-CHART_POINTS);
    if (following) travel(state.version, { now: true });
    else drawChart(Number(slider.value));
    if (atTop) await showHistory(state.version);
    else pageInfo.textContent = `Versions ${Math.max(1, top - HISTORY_PAGE + 1)}–${top} of ${state.version}`;
  };
  const stream = follow("_pumps", {
    onMessage: (m) => {
      if (m.message?.id !== id) return;
      catchingUp = catchingUp.then(() => update(m.message)).catch(() => {});
    },
  });
  loading = load();
  const tick = setInterval(() => refreshAgo(root), 5000);
  return () => {
    gone = true;
    stream.close();
    clearInterval(tick);
    clearTimeout(ttTimer);
  };
}
