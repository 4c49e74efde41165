// DOM building and formatting helpers. Data is only ever inserted as text, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An HTML element: `h("a", {href: "#/"}, "text", child)`. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, same call shape as `h`. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** A number with `digits` decimals, or "–" when there is none. */
export function num(v, digits = 1) {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–";
}

/** A number with its unit, or "–" (no unit) when there is none. */
export function withUnit(v, unit, digits = 1) {
  const n = num(v, digits);
  return n === "–" ? n : `${n} ${unit}`;
}

const pad = (n) => String(n).padStart(2, "0");

/** A whole number, or "–" when there is none. */
export function count(v) {
  return typeof v === "number" ? String(v) : "–";
}

/** A local date and time, compact and sortable: "2026-11-25 10:03:00". */
export function dateTime(iso) {
  if (iso === undefined || iso === null || iso === "") return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A local time of day: "10:03:00". */
export function clock(d = new Date()) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "12 s ago", "3 min ago" … for a recent ISO time. */
export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A time element that shows "… ago" and keeps it current (see `refreshAgo`). */
export function agoEl(iso) {
  return h("time", { datetime: iso ?? "", title: dateTime(iso), class: "ago" }, ago(iso));
}

/** Re-renders every "… ago" under `root`. */
export function refreshAgo(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time.ago")) el.textContent = ago(el.getAttribute("datetime"), now);
}

/** A message box: kind is "error", "info" or "empty". */
export function note(kind, ...children) {
  return h("div", { class: `note ${kind}`, role: kind === "error" ? "alert" : "status" }, ...children);
}

/**
 * Appends a page's rows (`rows(page)`) to `tbody` and, while `page.next` is set, a `label` button in `box`
 * that fetches the next page (`fetchNext(page.next)`) and does the same; `onPage` is told of each page shown.
 * A page that arrives for a table no longer shown (a Refresh replaced it, with its button) is dropped.
 */
export function showPages(box, tbody, page, { rows, fetchNext, label = "Load more", onPage }) {
  tbody.append(...rows(page));
  onPage?.(page);
  if (!page.next) return;
  const more = h("button", {
    type: "button",
    class: "load-more",
    onclick: async () => {
      more.disabled = true;
      try {
        const next = await fetchNext(page.next);
        if (!tbody.isConnected) return;
        more.remove();
        showPages(box, tbody, next, { rows, fetchNext, label, onPage });
      } catch (err) {
        more.disabled = false;
        more.after(note("error", `Cannot load more: ${err.message}`));
      }
    },
  }, label);
  box.append(more);
}

/** A short JSON preview of any value. */
export function preview(value, max = 300) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text === undefined ? "" : text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * A table inside a horizontally scrolling frame (small screens). A heading written "#Label"
 * is a numeric column (right-aligned).
 */
export function table(head, body, attrs = {}) {
  const th = (t) =>
    t.startsWith("#") ? h("th", { scope: "col", class: "num" }, t.slice(1)) : h("th", { scope: "col" }, t);
  return h("div", { class: "table-wrap" }, h("table", attrs, h("thead", {}, h("tr", {}, head.map(th))), body));
}
