// Devices: the list (100 a page), a form to create one (its token shown once), and Revoke on each.
import { api } from "./api.js";
import { dateTime, h, note, showPages, table } from "./dom.js";

const PAGE = 100;
const ID_RULE = "1–64 letters, digits or _ . : - (starting with a letter or digit)";

function row(d, revoke) {
  const result = h("span", { class: "retry-result" });
  const button = h("button", {
    type: "button",
    class: "danger",
    "aria-label": `Revoke ${d.id}`,
    onclick: () => revoke(d, button, result),
  }, "Revoke");
  return h(
    "tr",
    { dataset: { deviceId: d.id } },
    h("th", { scope: "row" }, h("code", {}, d.id)),
    h("td", {}, h("time", { datetime: d.createdAt }, dateTime(d.createdAt))),
    h("td", {}, h("div", { class: "actions" }, button, result)),
  );
}

/** The new device's token, shown this once, with how the device uses it. */
function tokenNote(created, onDone) {
  const field = h("input", {
    id: "device-token",
    readonly: true,
    value: created.token,
    spellcheck: "false",
    autocomplete: "off",
    onfocus: (e) => e.target.select(),
  });
  const copied = h("span", { role: "status", class: "muted" });
  const copy = h("button", {
    type: "button",
    onclick: async () => {
      field.focus();
      field.select();
      try {
        await navigator.clipboard.writeText(created.token);
        copied.textContent = "Copied.";
      } catch {
        copied.textContent = "Selected: copy it with Ctrl+C (⌘C on a Mac).";
      }
    },
  }, "Copy");
  return note(
    "info",
    h("p", {}, h("strong", {}, `Device ${created.id} created.`)),
    h("label", { for: "device-token" }, `Token of ${created.id}`),
    h("div", { class: "token-row" }, field, copy),
    copied,
    h(
      "p",
      {},
      h("strong", {}, "Copy it now: it will not be shown again."),
      " Sluice keeps only its hash. Lost it? Revoke the device and create it again under the same id.",
    ),
    h(
      "p",
      {},
      "The device sends it as ",
      h("code", {}, "Authorization: Bearer <token>"),
      " over HTTP, or over MQTT as the password with ",
      h("code", {}, created.id),
      " as the username.",
    ),
    h("button", { type: "button", class: "link", onclick: onDone }, "Done, hide the token"),
  );
}

/** Renders the devices page into `root`; returns its clean-up. */
export function devicesView(root) {
  document.title = "Devices · Sluice";
  let gone = false;
  let tbody = null;
  /** The id of the last device loaded, and whether more follow it (a new one past it is left to Load more). */
  let loaded = { last: null, more: false };

  const idInput = h("input", {
    id: "device-id",
    name: "id",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "pump-1",
    "aria-describedby": "device-id-hint",
  });
  const formStatus = h("div", { id: "device-form-status" });
  const tokenBox = h("div", { id: "device-created" });
  const listBox = h("div", {}, h("p", { class: "muted" }, "Loading devices…"));
  const listStatus = h("div");
  const reload = h("button", { type: "button", onclick: () => (listStatus.replaceChildren(), load()) }, "Refresh");

  const create = async (e) => {
    e.preventDefault();
    const id = idInput.value.trim();
    submit.disabled = true;
    formStatus.replaceChildren();
    idInput.removeAttribute("aria-invalid");
    try {
      const created = await api("/admin/devices", { method: "POST", body: { id } });
      if (gone) return;
      idInput.value = "";
      tokenBox.replaceChildren(tokenNote(created, () => tokenBox.replaceChildren()));
      tokenBox.querySelector("input")?.focus();
      added({ id: created.id, createdAt: new Date().toISOString() });
    } catch (err) {
      if (gone) return;
      idInput.setAttribute("aria-invalid", "true");
      formStatus.replaceChildren(note("error", `Not created: ${err.message}`));
    } finally {
      submit.disabled = false;
    }
  };
  const submit = h("button", { type: "submit" }, "Create device");
  const form = h(
    "form",
    { class: "settings", id: "new-device", onsubmit: create },
    h(
      "div",
      { class: "field" },
      h("label", { for: "device-id" }, "Device id"),
      idInput,
      h("small", { id: "device-id-hint" }, ID_RULE),
    ),
    h("div", { class: "actions" }, submit),
    formStatus,
  );

  root.append(
    h("div", { class: "title" }, h("h1", {}, "Devices"), reload),
    h(
      "section",
      { class: "card" },
      h("h2", {}, "New device"),
      h(
        "p",
        { class: "muted" },
        "A device gets a token of its own, shown once. Its pump and tasks are kept under its id.",
      ),
      form,
      tokenBox,
    ),
    h("section", { class: "card" }, h("h2", {}, "All devices"), listStatus, listBox),
  );

  const revoke = async (d, button, result) => {
    const sure = confirm(
      `Revoke device ${d.id}? Its token stops working at once on every protocol and its open connections ` +
        "are closed. Its pump, documents and queued tasks stay. To give it a new token, create it again " +
        "under the same id.",
    );
    if (!sure) return;
    button.disabled = true;
    result.replaceChildren("Revoking…");
    try {
      await api(`/admin/devices/${encodeURIComponent(d.id)}`, { method: "DELETE" });
    } catch (err) {
      if (err.status !== 404) {
        button.disabled = false;
        result.replaceChildren(note("error", `Not revoked: ${err.message}`));
        return;
      }
      // Revoked meanwhile elsewhere: gone all the same.
    }
    if (gone) return;
    button.closest("tr")?.remove();
    tbody?.querySelector(`tr[data-device-id="${CSS.escape(d.id)}"]`)?.remove(); // a Refresh may have redrawn it
    listStatus.replaceChildren(note("info", `Device ${d.id} revoked: its token no longer works.`));
    if (tbody && tbody.children.length === 0 && !loaded.more) load();
  };

  /** Puts a device just created into the list, in id order, if it falls within the rows loaded. */
  const added = (d) => {
    listStatus.replaceChildren();
    if (!tbody) return load();
    if (loaded.more && loaded.last !== null && d.id > loaded.last) return; // on a page not loaded yet
    tbody.querySelector(`tr[data-device-id="${CSS.escape(d.id)}"]`)?.remove();
    const before = [...tbody.children].find((tr) => tr.dataset.deviceId > d.id);
    tbody.insertBefore(row(d, revoke), before ?? null);
    if (!loaded.more) loaded.last = tbody.lastElementChild?.dataset.deviceId ?? null;
  };

  const pages = {
    rows: (page) => page.devices.map((d) => row(d, revoke)),
    fetchNext: (after) => api(`/admin/devices?limit=${PAGE}&after=${encodeURIComponent(after)}`),
    onPage: (page) => loaded = { last: page.devices.at(-1)?.id ?? loaded.last, more: Boolean(page.next) },
  };

  const load = async () => {
    reload.disabled = true;
    try {
      const page = await api(`/admin/devices?limit=${PAGE}`);
      if (gone) return;
      if (page.devices.length === 0) {
        tbody = null;
        listBox.replaceChildren(note("empty", "No devices yet: create one above."));
        return;
      }
      tbody = h("tbody");
      listBox.replaceChildren(table(["Device", "Created", ""], tbody, { id: "devices" }));
      showPages(listBox, tbody, page, pages);
    } catch (err) {
      if (!gone) listBox.replaceChildren(note("error", `Cannot load the devices: ${err.message}`));
    } finally {
      reload.disabled = false;
    }
  };
  load();
  return () => {
    gone = true;
  };
}
