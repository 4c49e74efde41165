// A channel's settings as a form: to create a channel, or to change and delete one.
import { api } from "./api.js";
import { h, note } from "./dom.js";

const ORDERINGS = [
  ["device", "device: each device's tasks in order"],
  ["channel", "channel: one order for the whole channel"],
  ["none", "none: spread over partitions, no order"],
];

/** Script paths typed as a comma- or space-separated list. */
const scriptList = (text) => text.split(/[\s,]+/).filter(Boolean);

/**
 * The settings form. Without `channel` it creates one and calls `onSaved(config)`; with it, it
 * saves changes (`PATCH`) or deletes the channel (after a confirmation) and calls `onDeleted()`.
 */
export function channelSettings({ channel = null, onSaved = () => {}, onDeleted = () => {} } = {}) {
  const creating = channel === null;
  const id = (field) => `channel-${field}`;
  const name = h("input", { id: id("name"), required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", autocomplete: "off" });
  const ordering = h(
    "select",
    { id: id("ordering"), disabled: !creating },
    ORDERINGS.map(([v, label]) => h("option", { value: v, selected: v === (channel?.ordering ?? "device") }, label)),
  );
  const checkbox = (field, label) => {
    const box = h("input", { type: "checkbox", id: id(field), checked: channel?.[field] === true });
    return [box, h("label", { class: "check" }, box, ` ${label}`)];
  };
  const [anonymousPublish, publishLabel] = checkbox("anonymousPublish", "Anyone may publish, without a token");
  const [anonymousSubscribe, subscribeLabel] = checkbox("anonymousSubscribe", "Anyone may subscribe, without a token");
  const [paused, pausedLabel] = checkbox(
    "paused",
    "Paused: its scripts do not run (messages are still taken and queued)",
  );
  const subscribers = h("input", {
    id: id("subscribers"),
    value: (channel?.subscribers ?? []).join(", "),
    placeholder: "my/script, other/script",
    autocomplete: "off",
  });
  const defaultScript = h("input", {
    id: id("defaultScript"),
    value: channel?.defaultScript ?? "",
    placeholder: "blog/queues/processor",
    autocomplete: "off",
  });
  const status = h("div");
  const field = (input, label, hint) =>
    h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint ? h("small", {}, hint) : null);

  const submit = async (e) => {
    e.preventDefault();
    const settings = {
      anonymousPublish: anonymousPublish.checked,
      anonymousSubscribe: anonymousSubscribe.checked,
      subscribers: scriptList(subscribers.value),
    };
    const script = defaultScript.value.trim();
    try {
      const saved = creating
        ? await api("/admin/channels", {
          method: "POST",
          body: {
            name: name.value.trim(),
            ordering: ordering.value,
            ...settings,
            ...(script ? { defaultScript: script } : {}),
          },
        })
        : await api(`/admin/channels/${encodeURIComponent(channel.name)}`, {
          method: "PATCH",
          body: { ...settings, defaultScript: script || null, paused: paused.checked },
        });
      status.replaceChildren(note("info", creating ? `Channel ${saved.name} created.` : "Settings saved."));
      onSaved(saved);
    } catch (err) {
      status.replaceChildren(note("error", `${creating ? "Not created" : "Not saved"}: ${err.message}`));
    }
  };
  const purge = async () => {
    if (!confirm(`Drop every task channel ${channel.name} has queued, and the messages its scripts have not run?`)) {
      return;
    }
    try {
      const done = await api(`/admin/channels/${encodeURIComponent(channel.name)}/purge`, { method: "POST" });
      const busy = done.busy > 0 ? ` ${done.busy} stream(s) were busy: drop again.` : "";
      status.replaceChildren(note("info", `Dropped ${done.purged} queued on ${done.streams} stream(s).${busy}`));
      onSaved(channel);
    } catch (err) {
      status.replaceChildren(note("error", `Not dropped: ${err.message}`));
    }
  };
  const remove = async () => {
    if (!confirm(`Delete channel ${channel.name}? Publishing and queueing on it stop at once.`)) return;
    try {
      await api(`/admin/channels/${encodeURIComponent(channel.name)}`, { method: "DELETE" });
      onDeleted();
    } catch (err) {
      status.replaceChildren(note("error", `Not deleted: ${err.message}`));
    }
  };

  return h(
    "form",
    { class: "settings", id: creating ? "new-channel" : "channel-settings", onsubmit: submit },
    creating ? field(name, "Name", "letters, digits, _ or -") : null,
    field(ordering, "Ordering", creating ? null : "cannot change: the queued tasks are partitioned by it"),
    publishLabel,
    subscribeLabel,
    creating ? null : pausedLabel,
    field(subscribers, "Subscriber scripts", "run once per message published from now on"),
    field(defaultScript, "Default script", "queued for a bare CSV reading that names no script"),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, creating ? "Create channel" : "Save settings"),
      creating ? null : h("button", { type: "button", class: "danger", onclick: purge }, "Drop queued"),
      creating ? null : h("button", { type: "button", class: "danger", onclick: remove }, "Delete channel"),
    ),
    status,
  );
}
