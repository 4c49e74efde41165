// The dashboard: takes the admin token, routes by URL hash, shows one view at a time.
import { api, onLiveState, token, UNAUTHORIZED } from "./api.js";
import { channelView } from "./channel.js";
import { channelsView } from "./channels.js";
import { deadLettersView } from "./dead_letters.js";
import { devicesView } from "./devices.js";
import { h, note } from "./dom.js";
import { pumpView } from "./pump.js";
import { pumpsView } from "./pumps.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const badge = document.getElementById("live");
const signOutButton = document.getElementById("sign-out");

/** Hash routes: pattern → view (each view renders into `main` and returns its clean-up). */
const routes = [
  [/^#?\/?$/, "pumps", () => pumpsView(main)],
  [/^#\/pumps\/?$/, "pumps", () => pumpsView(main)],
  [/^#\/pumps\/(.+)$/, "pumps", (id) => pumpView(main, id)],
  [/^#\/channels\/?$/, "channels", () => channelsView(main)],
  [/^#\/channels\/(.+)$/, "channels", (name) => channelView(main, name)],
  [/^#\/dead-letters\/?$/, "dead-letters", () => deadLettersView(main)],
  [/^#\/devices\/?$/, "devices", () => devicesView(main)],
];

let cleanup = null;

function show() {
  cleanup?.();
  cleanup = null;
  main.replaceChildren();
  globalThis.scrollTo(0, 0);
  for (const [pattern, section, view] of routes) {
    const m = pattern.exec(location.hash);
    if (!m) continue;
    const parts = m.slice(1).map(decoded);
    if (parts.includes(null)) break; // a hand-typed `%` that encodes nothing
    for (const a of nav.querySelectorAll("a")) a.classList.toggle("active", a.dataset.nav === section);
    cleanup = view(...parts) ?? null;
    return;
  }
  for (const a of nav.querySelectorAll("a")) a.classList.remove("active");
  document.title = "Not found · Sluice";
  main.append(note("error", "No such page. ", h("a", { href: "#/" }, "Back to the pumps")));
}

/** `decodeURIComponent`, or null for text that is not percent-encoded UTF-8. */
function decoded(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

function signedIn(yes) {
  nav.hidden = !yes;
  signOutButton.hidden = !yes;
}

/** Asks for the admin token; `message` says why (a refused token, say). */
function signIn(message) {
  cleanup?.();
  cleanup = null;
  signedIn(false);
  document.title = "Sign in · Sluice";
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    placeholder: "sla_…",
  });
  const status = h("div");
  if (message) status.append(note("error", message));
  const form = h(
    "form",
    { class: "card sign-in", onsubmit: (e) => (e.preventDefault(), verify(input.value.trim(), status)) },
    h("h1", {}, "Sign in"),
    h(
      "p",
      { class: "muted" },
      "The dashboard needs Sluice's admin token. The first start printed it with a link to ",
      h("code", {}, "/#token=…"),
      ".",
    ),
    h("label", { for: "token" }, "Admin token"),
    input,
    status,
    h("button", { type: "submit" }, "Sign in"),
  );
  main.replaceChildren(form);
  input.focus();
}

/** Checks a token against an admin-only route; signs in or says what is wrong. */
async function verify(candidate, status) {
  if (!candidate) return signIn("Enter the admin token.");
  token.set(candidate);
  status?.replaceChildren(note("info", "Checking the token…"));
  try {
    await api("/admin/channels?limit=1");
  } catch (err) {
    if (err.status === 429) {
      // Too many refused tokens from this address: whether this one is right cannot be told yet.
      token.clear();
      return signIn(`${err.message.replace(/\.?$/, ".")} The token was not checked.`);
    }
    if (err.status !== 401 && err.status !== 403) {
      // Sluice is down or failing: keep the token and offer to try again.
      const again = h("button", { type: "button", onclick: () => verify(candidate) }, "Try again");
      return main.replaceChildren(note("error", `Cannot reach the dashboard's data: ${err.message} `, again));
    }
    token.clear();
    return signIn(
      err.status === 401
        ? `The token was refused: ${err.message}. Check it and try again.`
        : "This is a device token. The dashboard needs the admin token (printed at Sluice's first start).",
    );
  }
  signedIn(true);
  if (!routes.some(([p]) => p.test(location.hash))) history.replaceState(null, "", "#/");
  show();
}

/**
 * A token in the URL (`/#token=…`, all the rest of the address) is taken, kept for this tab, and removed from the
 * address bar. Percent-encoded or not: an `ADMIN_TOKEN` with a `%` that encodes nothing is taken as written.
 */
function tokenFromUrl() {
  const m = /^#token=(.*)$/s.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  return decoded(m[1]) ?? m[1];
}

// Signed in, a `#token=` the address brings is dropped (only a first load or the sign-in form takes a token):
// another page holding this tab (its opener) could otherwise sign the admin out by setting a wrong one.
globalThis.addEventListener("hashchange", () => {
  const t = tokenFromUrl();
  if (token.get()) show();
  else if (t !== null) verify(t);
});
globalThis.addEventListener(UNAUTHORIZED, (e) => {
  if (!token.get()) return;
  token.clear();
  signIn(`The token stopped working: ${e.detail.message}. Sign in again.`);
});
signOutButton.addEventListener("click", () => {
  token.clear();
  signIn();
});
onLiveState((state) => {
  badge.hidden = state === null;
  badge.className = `badge ${state ?? ""}`;
  badge.textContent = state ?? "";
  badge.title = state === "live" ? "Following live updates" : "Waiting for the live stream";
});

const given = tokenFromUrl() ?? token.get();
if (given) verify(given);
else signIn();
