// A pump's page: its state, a chart of recent readings, its event history, and time travel.
import { api, follow, lasting, RELOAD_MS } from "./api.js";
import { readingsChart } from "./chart.js";
import { agoEl, dateTime, h, note, num, refreshAgo, withUnit } from "./dom.js";
import { pumpHistory } from "./pump_history.js";

const CHART_POINTS = 200;

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
    item("Temperature", withUnit(r.temperature, "°C"), "temperature"),
    item("Pressure", withUnit(r.pressure, "bar", 2), "pressure"),
    item("Outside", withUnit(p.outsideTemperature, "°C"), "outside"),
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
  const history = pumpHistory(path, { onPick: (version) => travel(version, { reveal: true }) });
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
    history.el,
  );
  const status = h("div");
  root.append(
    h("div", { class: "title" }, h("a", { href: "#/", class: "back" }, "← Pumps"), h("h1", {}, id)),
    status,
    page,
  );

  let current = null; // the latest state
  let oldest = 1; // the oldest version time travel can rebuild (READING_RETENTION trims older ones)
  let readings = []; // chart points, oldest first
  let following = true; // time travel follows the newest version
  let ttAsked = 0;
  let ttTimer = null;
  let gone = false;

  const drawChart = (marker) => {
    if (readings.length === 0) return chartBox.replaceChildren(note("empty", "No readings yet."));
    chartBox.replaceChildren(readingsChart(readings, { marker }));
  };

  /** Shows the state at `version` (time travel); debounced while the slider moves. */
  /** Shows the state at `version`; `reveal` scrolls to it (picked in the history, further down). */
  const travel = (version, { now = false, reveal = false } = {}) => {
    const v = Math.min(Math.max(oldest, Math.round(Number(version)) || oldest), current.version);
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
        if (reveal) ttResult.scrollIntoView({ block: "nearest", behavior: "smooth" });
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

  let retry = null;
  const load = async () => {
    try {
      const state = await api(path);
      if (gone) return;
      // The history starts at the oldest event kept; where older ones were trimmed, the state just
      // before it (their base) is the oldest time travel rebuilds.
      const first = (await api(`${path}/events?from=1&limit=1`)).events[0]?.seq ?? 1;
      if (gone) return;
      oldest = Math.max(1, first - 1);
      slider.min = versionInput.min = String(oldest);
      setCurrent(state);
      const from = Math.max(1, state.version - CHART_POINTS + 1);
      const res = await api(`${path}/events?from=${from}&limit=${CHART_POINTS}`);
      if (gone) return;
      readings = res.events.map(toReading).filter(Boolean);
      page.hidden = false;
      status.replaceChildren();
      drawChart();
      travel(state.version, { now: true });
      await history.latest(state.version);
    } catch (err) {
      if (gone) return;
      status.replaceChildren(
        err.status === 404
          ? note("empty", `Pump "${id}" has no readings yet. This page fills in when its first reading arrives.`)
          : lasting(err)
          ? note("error", `No pump can be called "${id}": ${err.message}`)
          : note("error", `Cannot load the pump: ${err.message} (trying again)`),
      );
      if (!lasting(err)) retry = setTimeout(() => loading = load(), RELOAD_MS); // Sluice down: until it is back
    }
  };

  // Newer states arrive on `_pumps`: add their events to the chart and the first history page.
  let catchingUp = Promise.resolve();
  let loading = null;
  const update = async (state) => {
    await loading;
    if (!current) return (loading = load());
    if (state.version <= current.version) return;
    const from = Math.max((readings.at(-1)?.version ?? 0) + 1, state.version - CHART_POINTS + 1);
    const res = await api(`${path}/events?from=${from}&limit=${state.version - from + 1}`);
    if (gone) return;
    setCurrent(state);
    readings = [...readings, ...res.events.map(toReading).filter(Boolean)].slice(-CHART_POINTS);
    if (following) travel(state.version, { now: true });
    else drawChart(Number(slider.value));
    await history.latest(state.version);
  };
  let opened = false;
  const stream = follow("_pumps", {
    // Once the stream is open (a reading may have landed since the page's first read), and back after
    // an outage the stream could not resume from: read the state again, to catch up.
    onOpen: (gap) => {
      if (gap || !opened) catchingUp = catchingUp.then(async () => update(await api(path))).catch(() => {});
      opened = true;
    },
    onMessage: (m) => {
      if (m.message?.id !== id) return;
      catchingUp = catchingUp.then(() => update(m.message)).catch(() => {});
    },
  });
  loading = load();
  const tick = setInterval(() => refreshAgo(root), 5000);
  return () => {
    gone = true;
    clearTimeout(retry);
    stream.close();
    history.close();
    clearInterval(tick);
    clearTimeout(ttTimer);
  };
}
