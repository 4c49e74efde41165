// Dead letters (retry each from here) and the messages refused at the edge.
import { api } from "./api.js";
import { agoEl, dateTime, h, note, preview, table } from "./dom.js";

function deadRow(d, retry) {
  const last = d.errors?.at(-1);
  const result = h("span", { class: "retry-result" });
  const button = h("button", {
    type: "button",
    class: "retry",
    onclick: () => retry(d, button, result),
  }, "Retry");
  return h(
    "tr",
    { dataset: { taskId: d.taskId } },
    h("td", {}, h("code", {}, d.taskId)),
    h("td", {}, d.method),
    h("td", {}, d.device ?? "–"),
    h("td", { class: "num" }, String(d.attempts)),
    h("td", {}, agoEl(d.deadAt)),
    h(
      "td",
      { class: "error-text" },
      last ? last.error : "–",
      d.errors?.length > 1
        ? h(
          "details",
          {},
          h("summary", {}, `all ${d.errors.length} attempts`),
          h("ol", {}, d.errors.map((e) => h("li", {}, `attempt ${e.attempt}, ${dateTime(e.at)}: ${e.error}`))),
        )
        : null,
    ),
    h("td", { class: "params", title: preview(d.params, 2000) }, h("code", {}, preview(d.params, 80))),
    h("td", {}, button, result),
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
  const reload = h("button", { type: "button", onclick: () => load() }, "Refresh");
  root.append(
    h("div", { class: "title" }, h("h1", {}, "Dead letters"), reload),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "Dead tasks"),
      h(
        "p",
        { class: "muted" },
        "Tasks that failed every attempt. Retry sends one to the tail of its stream again, with the same task id.",
      ),
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
  let gone = false;

  const retry = async (d, button, result) => {
    button.disabled = true;
    result.replaceChildren("Retrying…");
    try {
      const res = await api(`/admin/dead-letters/${encodeURIComponent(d.taskId)}/retry`, { method: "POST" });
      result.replaceChildren(note("info", `Queued again as ${res.taskId}.`));
      button.textContent = "Queued";
    } catch (err) {
      button.disabled = false;
      result.replaceChildren(note("error", `Retry failed: ${err.message}`));
    }
  };

  const load = async () => {
    reload.disabled = true;
    const [dead, refused] = await Promise.allSettled([api("/admin/dead-letters"), api("/admin/refused")]);
    reload.disabled = false;
    if (gone) return;
    if (dead.status === "rejected") {
      deadBox.replaceChildren(note("error", `Cannot load the dead letters: ${dead.reason.message}`));
    } else if (dead.value.deadLetters.length === 0) {
      deadBox.replaceChildren(note("empty", "No dead letters: every task so far succeeded or is still being tried."));
    } else {
      deadBox.replaceChildren(table(
        ["Task", "Script", "Device", "#Attempts", "Dead", "Last error", "Params", ""],
        h("tbody", {}, dead.value.deadLetters.map((d) => deadRow(d, retry))),
        { id: "dead-letters" },
      ));
    }
    if (refused.status === "rejected") {
      refusedBox.replaceChildren(note("error", `Cannot load the refused messages: ${refused.reason.message}`));
    } else if (refused.value.refused.length === 0) {
      refusedBox.replaceChildren(note("empty", "Nothing refused in the last 7 days."));
    } else {
      refusedBox.replaceChildren(table(
        ["When", "Protocol", "Device", "Channel", "Code", "Reason", "Payload", "#Also refused"],
        h("tbody", {}, refused.value.refused.map(refusedRow)),
        { id: "refused" },
      ));
    }
  };
  load();
  return () => {
    gone = true;
  };
}
