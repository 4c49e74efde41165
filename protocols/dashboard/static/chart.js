// A small SVG line chart of a pump's readings: temperature (left axis) and pressure (right axis)
// over the event version. Drawn by hand: no chart library.
import { dateTime, s } from "./dom.js";

/** Round axis ticks covering [min, max]: `{min, max, step, ticks}`. */
export function niceTicks(min, max, count = 4) {
  if (!(max > min)) {
    const pad = Math.abs(min) * 0.05 || 1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw * 0.999) ?? 10 * mag;
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { min: lo, max: hi, step, ticks };
}

/** Maps [d0, d1] onto [r0, r1] (the middle of the range when the domain is one point). */
export function linear(d0, d1, r0, r1) {
  return (v) => d1 === d0 ? (r0 + r1) / 2 : r0 + (v - d0) * (r1 - r0) / (d1 - d0);
}

/** SVG path data through `points` ({x, y}). */
export function linePath(points, x, y) {
  return points.map((p, i) => `${i ? "L" : "M"}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join("");
}

const W = 720, H = 260, PAD = { left: 48, right: 52, top: 14, bottom: 30 };

/**
 * The chart of `readings` ({version, temperature, pressure, at}); `marker` is a version to
 * highlight (time travel).
 */
export function readingsChart(readings, { marker } = {}) {
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": `Temperature and pressure of the last ${readings.length} readings`,
  });
  const xs = readings.map((r) => r.version);
  const x = linear(Math.min(...xs), Math.max(...xs), PAD.left, W - PAD.right);
  const series = [
    { key: "temperature", unit: "°C", side: "left" },
    { key: "pressure", unit: "bar", side: "right" },
  ];
  const grid = s("g", { class: "grid" });
  svg.append(grid);
  for (const ser of series) {
    const values = readings.map((r) => r[ser.key]);
    const t = niceTicks(Math.min(...values), Math.max(...values));
    const y = linear(t.min, t.max, H - PAD.bottom, PAD.top);
    const ax = ser.side === "left" ? PAD.left - 6 : W - PAD.right + 6;
    for (const v of t.ticks) {
      if (ser.side === "left") grid.append(s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
      svg.append(s("text", {
        x: ax,
        y: y(v) + 4,
        class: `tick ${ser.key}`,
        "text-anchor": ser.side === "left" ? "end" : "start",
      }, Number(v.toPrecision(6))));
    }
    const points = readings.map((r) => ({ x: r.version, y: r[ser.key] }));
    svg.append(s("path", { d: linePath(points, x, y), class: `line ${ser.key}`, "data-points": points.length }));
    const dots = s("g", { class: `dots ${ser.key}` });
    const shown = readings.length <= 60 ? readings : readings.slice(-1);
    for (const r of shown) {
      dots.append(
        s(
          "circle",
          { cx: x(r.version), cy: y(r[ser.key]), r: 3 },
          s("title", {}, `v${r.version}: ${r[ser.key]} ${ser.unit} (${dateTime(r.at)})`),
        ),
      );
    }
    svg.append(dots);
  }
  const first = readings[0], last = readings.at(-1);
  svg.append(
    s(
      "text",
      { x: PAD.left, y: H - 8, class: "tick" },
      `v${first.version} · ${dateTime(first.at)}`,
    ),
    s(
      "text",
      { x: W - PAD.right, y: H - 8, class: "tick", "text-anchor": "end" },
      `v${last.version} · ${dateTime(last.at)}`,
    ),
  );
  if (marker !== undefined && marker >= first.version && marker <= last.version) {
    svg.append(s("line", { x1: x(marker), x2: x(marker), y1: PAD.top, y2: H - PAD.bottom, class: "marker" }));
  }
  return svg;
}
