// Dead letters (retry or discard each, or retry them all, from here) and the messages refused at the edge.
import { api } from "./api.js";
import { agoEl, dateTime, h, note, preview, showPages, table } from "./dom.js";

/** A last error longer than this may be cut by its clamp: a "whole error" to open shows it all. */
const CLAMPED_ERROR = 160;

function deadRow(d, act) {
  const last = d.errors?.at(-1);
  const result = h("span", { class: "retry-result" });
  const buttons = [];
  const button = (cls, label, action) => {
    const b = h("button", { type: "button", class: cls, onclick: () => act(d, action, buttons, result) }, label);
    buttons.push(b);
    return b;
  };
  return h(
    "tr",
    { dataset: { taskId: d.taskId } },
    h("td", { class: "task-id" }, h("code", { title: d.taskId }, d.taskId)),
    h("td", { class: "wraps" }, d.method),
    h("td", { class: "wraps" }, d.device ?? "–"),
    h("td", { class: "num" }, String(d.attempts)),
    h("td", {}, agoEl(d.deadAt)),
    h(
      "td",
      { class: "error-text" },
      // A few lines of the last error (the whole of it in the tooltip, and below under "all N attempts" or
      // "whole error"): a long one no longer widens the table past its card.
      h("div", { class: "clamp", title: last?.error ?? "" }, last ? last.error : "–"),
      d.errors?.length > 1
        ? h(
          "details",
          {},
          h("summary", {}, `all ${d.errors.length} attempts`),
          h("ol", {}, d.errors.map((e) => h("li", {}, `attempt ${e.attempt}, ${dateTime(e.at)}: ${e.error}`))),
        )
        : last?.error.length > CLAMPED_ERROR
        ? h("details", {}, h("summary", {}, "whole error"), h("p", {}, last.error))
        : null,
    ),
    h(
      "td",
      { class: "params", title: preview(d.params, 2000) },
      h("code", { class: "clamp" }, preview(d.params, 200)),
    ),
    h(
      "td",
      {},
      h(
        "div",
        { class: "actions" },
        button("retry", "Retry", "retry"),
        button("discard danger", "Discard", "discard"),
        result,
      ),
    ),
  );
}

function refusedRow(r) {
  return h(
    "tr",
    {},
    h("td", {}, agoEl(r.at)),
    h("td", {}, r.protocol),
    h("td", {}, r.device ?? "–"),
    h("td", {}, r.channel ?? "–"),
    h("td", {}, h("code", {}, r.code)),
    h("td", { class: "error-text" }, r.reason),
    h("td", { title: r.preview }, h("code", {}, preview(r.preview, 80))),
    h("td", { class: "num" }, String(r.suppressed ?? 0)),
  );
}

/** Renders the dead letters and the refused list into `root`; returns its clean-up. */
export function deadLettersView(root) {
  document.title = "Dead letters · Sluice";
  const deadBox = h("div", {}, h("p", { class: "muted" }, "Loading dead letters…"));
  const refusedBox = h("div", {}, h("p", { class: "muted" }, "Loading refused messages…"));
  let gone = false;
  const reload = h("button", { type: "button", onclick: () => load() }, "Refresh");
  // Retry all and Discard all: one call per thousand, with the count so far, until none is left.
  const allResult = h("span", { class: "retry-result", role: "status" });
  const bulk = (action, label, question, done) => {
    const button = h("button", {
      type: "button",
      class: action === "retry" ? "retry-all" : "discard-all danger",
      onclick: async () => {
        if (!confirm(question)) return;
        for (const b of bulkButtons) b.disabled = true;
        let count = 0, before;
        try {
          for (;;) {
            const res = await api(`/admin/dead-letters/${action}`, { method: "POST", body: before ? { before } : {} });
            before = res.before; // the next calls leave alone what dies again meanwhile
            const now = action === "retry" ? res.retried : res.discarded;
            count += now;
            allResult.replaceChildren(`${done(count)}${res.left > 0 ? `, ${res.left} to go…` : "."}`);
            if (res.left === 0 || now === 0 || gone) break;
          }
          load();
        } catch (err) {
          allResult.replaceChildren(note("error", `${label} stopped after ${count}: ${err.message}`));
        } finally {
          for (const b of bulkButtons) b.disabled = false;
        }
      },
    }, label);
    button.hidden = true; // shown once there are dead letters
    return button;
  };
  const bulkButtons = [
    bulk(
      "retry",
      "Retry all",
      "Queue every dead task again (each stream's in their first order)?",
      (n) => `Queued ${n} again`,
    ),
    bulk(
      "discard",
      "Discard all",
      "Discard every dead task for good? None of them will run again.",
      (n) => `Discarded ${n}`,
    ),
  ];

  root.append(
    h("div", { class: "title" }, h("h1", {}, "Dead letters"), reload),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Dead tasks"),
      h(
        "p",
        { class: "muted" },
        "Tasks that failed every attempt. Retry sends one to the tail of its stream again, with the same task id; " +
          "Discard takes it off this list for good (its task stays dead). Retry all sends every dead task back, " +
          "a thousand a call, each stream's in their first order; Discard all discards them all.",
      ),
      h("div", { class: "toolbar" }, ...bulkButtons, allResult),
      deadBox,
    ),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Refused at the edge"),
      h(
        "p",
        { class: "muted" },
        "Bad JSON, unknown script or channel, bad token in an MQTT topic: not processed, not retryable.",
      ),
      refusedBox,
    ),
  );
  const act = async (d, action, buttons, result) => {
    if (action === "discard" && !confirm(`Discard dead task ${d.taskId} for good? It will not run again.`)) return;
    for (const b of buttons) b.disabled = true;
    result.replaceChildren(action === "retry" ? "Retrying…" : "Discarding…");
    const path = `/admin/dead-letters/${encodeURIComponent(d.taskId)}`;
    try {
      if (action === "retry") {
        const res = await api(`${path}/retry`, { method: "POST" });
        result.replaceChildren(
          note("info", res.taskId === d.taskId ? "Queued again." : `Queued again as ${res.taskId}.`),
        );
      } else {
        await api(path, { method: "DELETE" });
        result.replaceChildren(note("info", "Discarded."));
      }
      for (const b of buttons) b.remove(); // done: the note says what happened
    } catch (err) {
      for (const b of buttons) b.disabled = false;
      result.replaceChildren(note("error", `${action === "retry" ? "Retry" : "Discard"} failed: ${err.message}`));
    }
  };

  /** Paging through `list` (`deadLetters` or `refused`) of `path`, each row made by `row`. */
  const pages = (list, path, row, label) => ({
    rows: (page) => page[list].map(row),
    fetchNext: (after) => api(`${path}?after=${encodeURIComponent(after)}`),
    label,
  });
  const DEAD = pages("deadLetters", "/admin/dead-letters", (d) => deadRow(d, act), "Load more");
  const REFUSED = pages("refused", "/admin/refused", refusedRow, "Load more refused");

  const load = async () => {
    reload.disabled = true;
    const [dead, refused] = await Promise.allSettled([api("/admin/dead-letters"), api("/admin/refused")]);
    reload.disabled = false;
    if (gone) return;
    for (const b of bulkButtons) b.hidden = dead.status !== "fulfilled" || dead.value.deadLetters.length === 0;
    if (dead.status === "rejected") {
      deadBox.replaceChildren(note("error", `Cannot load the dead letters: ${dead.reason.message}`));
    } else if (dead.value.deadLetters.length === 0) {
      deadBox.replaceChildren(note("empty", "No dead letters: every task so far succeeded or is still being tried."));
    } else {
      const tbody = h("tbody", {});
      deadBox.replaceChildren(table(
        ["Task", "Script", "Device", "#Attempts", "Dead", "Last error", "Params", ""],
        tbody,
        { id: "dead-letters" },
      ));
      showPages(deadBox, tbody, dead.value, DEAD);
    }
    if (refused.status === "rejected") {
      refusedBox.replaceChildren(note("error", `Cannot load the refused messages: ${refused.reason.message}`));
    } else if (refused.value.refused.length === 0) {
      refusedBox.replaceChildren(note("empty", "Nothing refused in the last 7 days."));
    } else {
      const tbody = h("tbody", {});
      refusedBox.replaceChildren(table(
        ["When", "Protocol", "Device", "Channel", "Code", "Reason", "Payload", "#Also refused"],
        tbody,
        { id: "refused" },
      ));
      showPages(refusedBox, tbody, refused.value, REFUSED);
    }
  };
  load();
  return () => {
    gone = true;
  };
}
