import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { ARTIFACTS, launchChromium } from "../helpers/browser.ts";
import { ADMIN, integration, post, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";

/** Generous: a loaded 2-core machine runs Sluice, its workers and Chromium at once. */
const SLOW = { timeout: 30_000 };

const reading = (t: number, p: number, minute: number) => ({
  temperature: String(t),
  pressure: String(p),
  coordinates: "45.50:-73.56",
  time: `2026-11-25T10:${String(minute).padStart(2, "0")}:00Z`,
});

async function feed(s: TestSluice, token: string, body: unknown): Promise<void> {
  const res = await post(`${s.url}/blog/queues/feed`, token, body);
  assert.equal(res.status, 200, await res.text());
}

/** Text of one cell of a pump's row in the list. */
function cell(page: Page, pump: string, field: string): Promise<string | null> {
  return page.locator(`#pumps tr[data-pump-id="${pump}"] [data-field="${field}"]`).textContent();
}

/** Collects the page's uncaught errors and console errors (a CSP violation, a failed load). */
function watchErrors(page: Page, expected?: RegExp): string[] {
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(err.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !expected?.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return errors;
}

integration("the dashboard shows pumps live, then a pump's chart, history and time travel", async () => {
  const s = await startTestSluice();
  const browser = await launchChromium();
  try {
    const token = await s.device("pump-1");
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${s.url}/#token=${ADMIN}`);

    // The token is taken from the URL, kept for the tab and removed from the address bar.
    await page.getByText("No pumps yet — post a reading").waitFor(SLOW);
    assert.ok(!page.url().includes(ADMIN), `token still in the URL: ${page.url()}`);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("sluice.adminToken")), ADMIN);
    await page.locator("#live.live").waitFor(SLOW);
    // Set a marker: if the page reloaded, it would be gone.
    await page.evaluate(() => Object.assign(globalThis, { __noReload: true }));

    // A reading appears as a new row without a reload, then the row follows the next readings.
    await feed(s, token, reading(21.5, 1.2, 0));
    await page.locator('#pumps tr[data-pump-id="pump-1"]').waitFor(SLOW);
    assert.equal(await cell(page, "pump-1", "temperature"), "21.5");
    assert.equal(await cell(page, "pump-1", "outside"), "4.5");
    await feed(s, token, reading(23.0, 1.3, 1));
    const invoke = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
      method: "blog/queues/processor",
      params: { data: "19.5,1.1,45.50:-73.56,2026-11-25T10:02:00Z" },
    });
    assert.equal(invoke.status, 202, await invoke.text());
    await page.locator('#pumps tr[data-pump-id="pump-1"][data-version="3"]').waitFor(SLOW);
    assert.equal(await cell(page, "pump-1", "temperature"), "19.5");
    assert.equal(await cell(page, "pump-1", "readings"), "3");
    assert.equal(await cell(page, "pump-1", "range"), "19.5 / 23.0 / 21.3");
    assert.equal(await page.evaluate(() => (globalThis as { __noReload?: boolean }).__noReload), true);

    // The pump page: a chart with a point per reading, and the history newest first.
    await page.getByRole("link", { name: "pump-1" }).click();
    await page.locator("#chart svg path.line.temperature[data-points='3']").waitFor(SLOW);
    const d = await page.locator("#chart svg path.line.temperature").getAttribute("d");
    assert.equal(d?.match(/[ML]/g)?.length, 3, `chart path: ${d}`);
    assert.equal(await page.locator("#chart svg path.line.pressure").count(), 1);
    await page.locator("#history tbody tr").nth(2).waitFor(SLOW);
    const seqs = await page.locator("#history tbody tr").evaluateAll((rows) =>
      rows.map((r) => r.getAttribute("data-seq"))
    );
    assert.deepEqual(seqs, ["3", "2", "1"]);

    // A reading that arrives while the page is open extends the chart and the history.
    await feed(s, token, reading(24.5, 1.4, 3));
    await page.locator("#chart svg path.line.temperature[data-points='4']").waitFor(SLOW);
    await page.locator('#history tbody tr[data-seq="4"]').waitFor(SLOW);

    // Time travel: the state at version 1 is the first reading alone.
    await page.locator("#tt-version").fill("1");
    await page.locator("#tt-version").dispatchEvent("change");
    await page.locator('#time-travel-state[data-version="1"]').waitFor(SLOW);
    const then = page.locator("#time-travel-state");
    assert.equal(await then.locator('[data-field="readings"]').textContent(), "1");
    assert.equal(await then.locator('[data-field="temperature"]').textContent(), "21.5 °C");
    assert.equal(await page.locator("#chart svg line.marker").count(), 1);
    // … and from the history table, the state after version 2.
    await page.locator('#history tbody tr[data-seq="2"] button').click();
    await page.locator('#time-travel-state[data-version="2"]').waitFor(SLOW);
    assert.equal(await then.locator('[data-field="temperature-range"]').textContent(), "21.5 / 23.0 / 22.3");

    await page.evaluate("scrollTo(0, 0)");
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL("dashboard.png", ARTIFACTS).pathname, fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await s.close();
  }
});

integration(
  "the pump page pages through a long history, 20 events a page, never repeating one as readings come",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const token = await s.device("pump-h");
      /** Queues readings `from`–`to` of the pump (each one's temperature tells it). */
      const readings = async (from: number, to: number) => {
        for (let n = from; n <= to; n++) {
          const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
            method: "blog/queues/processor",
            params: { data: `${20 + n / 10},1.2,45.50:-73.56,2026-11-25T10:00:00Z` },
          });
          assert.equal(res.status, 202, await res.text());
        }
      };
      await readings(1, 45);
      await waitFor(async () => (await (await s.admin("/pumps/pump-h")).json()).version === 45, 30_000, "45 readings");
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByText("1 pump").waitFor(SLOW);
      await page.goto(`${s.url}/#/pumps/pump-h`);
      await page.locator("#chart svg path.line.temperature[data-points='45']").waitFor(SLOW);
      const seqs = () =>
        page.locator("#history tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-seq")));
      await page.getByText("Versions 26–45 of 45").waitFor(SLOW);
      assert.equal((await seqs()).length, 20);
      await page.getByRole("button", { name: "Older →" }).click();
      await page.getByText("Versions 6–25 of 45").waitFor(SLOW);
      await page.getByRole("button", { name: "Older →" }).click();
      await page.getByText("Versions 1–5 of 45").waitFor(SLOW);
      assert.deepEqual(await seqs(), ["5", "4", "3", "2", "1"]);
      assert.ok(await page.getByRole("button", { name: "Older →" }).isDisabled());
      await page.getByRole("button", { name: "← Newer" }).click();
      await page.getByText("Versions 6–25 of 45").waitFor(SLOW);
      // Readings that come meanwhile move no page boundary: newer pages follow on without repeating a row.
      await readings(46, 52);
      await page.getByText("Versions 6–25 of 52").waitFor(SLOW);
      await page.getByRole("button", { name: "← Newer" }).click();
      await page.getByText("Versions 26–45 of 52").waitFor(SLOW);
      await page.getByRole("button", { name: "← Newer" }).click();
      await page.getByText("Versions 46–52 of 52").waitFor(SLOW);
      assert.deepEqual(await seqs(), ["52", "51", "50", "49", "48", "47", "46"]);
      assert.ok(await page.getByRole("button", { name: "← Newer" }).isDisabled());
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "the dashboard shows 'reconnecting' when its live stream drops, then catches up, token in no URL",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const token = await s.device("pump-r");
      const page = await browser.newPage();
      const errors = watchErrors(page);
      const urls: string[] = [];
      page.on("request", (r) => r.resourceType() === "document" || urls.push(r.url()));
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByText("No pumps yet").waitFor(SLOW);
      await page.locator("#live.live").waitFor(SLOW);
      await feed(s, token, reading(20, 1, 0));
      await page.locator('#pumps tr[data-pump-id="pump-r"][data-version="1"]').waitFor(SLOW);

      // The server ends every SSE stream (as a stopping instance does); EventSource comes back by itself.
      await s.server.adapters.find((a) => a.name === "sse")!.close();
      await page.locator("#live.reconnecting").waitFor(SLOW);
      await feed(s, token, reading(26, 1.5, 1));
      await page.locator("#live.live").waitFor(SLOW);
      // The reading made while the stream was down is not lost (resumed from Last-Event-ID).
      await page.locator('#pumps tr[data-pump-id="pump-r"][data-version="2"]').waitFor(SLOW);
      assert.equal(await cell(page, "pump-r", "temperature"), "26.0");
      assert.deepEqual(errors, []);
      // The admin token travels in a header, never in a URL (where proxies would log it).
      assert.ok(urls.some((u) => u.includes("/channels/_pumps/events")), "the live stream was followed");
      assert.deepEqual(urls.filter((u) => u.includes(ADMIN)), []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "the dashboard's pages load by themselves once Sluice answers again, and a missing channel says so",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const token = await s.device("pump-o");
      await feed(s, token, reading(21, 1, 0));
      const page = await browser.newPage();
      const errors = watchErrors(page, /status of (503|404)/);
      // Sluice "down" for a list's reads (answered 503 by the browser's network layer), then back.
      let down: RegExp | null = /\/pumps\?/;
      await page.route(
        /\/(pumps\?|admin\/channels\?limit=1000)/,
        (route) =>
          down?.test(route.request().url())
            ? route.fulfill({ status: 503, body: '{"error":{"code":"unavailable","message":"down"}}' })
            : route.continue(),
      );
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByText("Cannot load the pumps").waitFor(SLOW);
      down = null;
      await page.locator('#pumps tr[data-pump-id="pump-o"]').waitFor(SLOW); // no click: it tried again
      down = /\/admin\/channels\?limit=1000/;
      await page.getByRole("link", { name: "Channels" }).click();
      await page.getByText("Cannot load the channels").waitFor(SLOW);
      down = null;
      await page.locator('#channels tr[data-channel="blog_queuing"]').waitFor(SLOW);
      // A channel that does not exist (or was deleted elsewhere): said, and nothing to act on.
      await page.goto(`${s.url}/#/channels/ghost`);
      // (The settings' own read says it too, "Cannot read them: …": the page's word ends with "(deleted?)".)
      await page.getByText('Channel "ghost" does not exist (deleted?)').waitFor(SLOW);
      assert.equal(await page.locator("#publish-body").count(), 0);
      // The pumps' own channel shows the changes published before the page opened, as any channel does.
      await page.goto(`${s.url}/#/channels/_pumps`);
      await page.locator('li[data-seq="1"]').waitFor(SLOW);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "the dashboard refuses a wrong token with a clear message, accepts the admin token, and keeps it when the address brings another",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      // The browser logs the refused calls themselves; nothing else may go wrong.
      const errors = watchErrors(page, /^Failed to load resource: .* (401|403) /);
      await page.goto(`${s.url}/#token=not-the-admin-token`);
      await page.getByText("The token was refused").waitFor(SLOW);
      assert.ok(!page.url().includes("not-the-admin-token"));
      const device = await s.device("pump-9");
      await page.locator("#token").fill(device);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("This is a device token").waitFor(SLOW);
      // The README's placeholder pasted as is: no header can carry "…"; refused, and the form stays.
      await page.locator("#token").fill("sla_…");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("The token was refused: it has characters no token has").waitFor(SLOW);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("sluice.adminToken")), null);
      await page.locator("#token").fill(ADMIN);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("No pumps yet").waitFor(SLOW);
      // Another page that holds this tab (its opener) sets a wrong token in the address: it cannot sign the admin out.
      await page.evaluate(() => location.hash = "#token=sl_bogus");
      await page.waitForFunction(() => !location.hash.includes("token"), undefined, SLOW);
      await page.getByText("No pumps yet").waitFor(SLOW);
      assert.equal(await page.evaluate(() => sessionStorage.getItem("sluice.adminToken")), ADMIN);
      assert.ok(await page.getByRole("button", { name: "Sign out" }).isVisible());
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "the dashboard shows queue depth and live channel messages, and retries, discards and retries all dead letters",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const token = await s.device("dev-1");
      const created = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      assert.equal(created.status, 201, await created.text());
      const first = await post(`${s.url}/channels/alerts/messages`, token, { level: "warn", n: 1 });
      assert.equal(first.status, 202, await first.text());
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByText("No pumps yet").waitFor(SLOW);

      // The channel list with queue depth, refreshed by itself.
      await page.getByRole("link", { name: "Channels" }).click();
      await page.locator('#channels tr[data-channel="alerts"]').waitFor(SLOW);
      await page.locator('#channels tr[data-channel="blog_queuing"] [data-field="queued"]').waitFor(SLOW);
      await page.locator('#channels tr[data-channel="blog_queuing"] [data-field="queued"]', { hasText: /^\d+$/ })
        .waitFor(SLOW);

      // A channel's recent messages, then new ones as they are published (over HTTP and from the page).
      await page.getByRole("link", { name: "alerts" }).click();
      await page.locator('#messages li[data-seq="1"]').waitFor(SLOW);
      assert.match((await page.locator('#messages li[data-seq="1"] pre').textContent()) ?? "", /"level":"warn"/);
      // Published before the page opened: its time is not known, so none is made up.
      assert.equal(await page.locator('#messages li[data-seq="1"] time').textContent(), "earlier");
      await post(`${s.url}/channels/alerts/messages`, token, { level: "crit", n: 2 });
      await page.locator('#messages li[data-seq="2"]').waitFor(SLOW);
      assert.match((await page.locator('#messages li[data-seq="2"] time').textContent()) ?? "", /^\d\d:\d\d:\d\d$/);
      await page.locator("#publish-body").fill('{"from": "the dashboard"}');
      await page.getByRole("button", { name: "Publish" }).click();
      await page.locator('#messages li[data-seq="3"]').waitFor(SLOW);
      assert.match((await page.locator('#messages li[data-seq="3"] pre').textContent()) ?? "", /the dashboard/);

      // Tasks that fail for good are listed and can be retried or discarded from the page, one or all.
      const params = { note: "a long note that a device sent with its task ".repeat(4) };
      const deadTask = async () => {
        const dead = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/permanent", params });
        const { taskId } = await dead.json();
        assert.equal(dead.status, 202, taskId);
        return taskId as string;
      };
      const deadIds = async () =>
        (await (await s.admin("/admin/dead-letters")).json()).deadLetters.map((d: { taskId: string }) => d.taskId);
      const [taskId, other] = [await deadTask(), await deadTask()];
      await waitFor(async () => (await deadIds()).length === 2, 30_000, "the dead letters");
      const asked: string[] = [];
      page.on("dialog", (d) => (asked.push(d.message()), d.accept())); // Discard and Retry all ask first
      await page.getByRole("link", { name: "Dead letters" }).click();
      const row = page.locator(`#dead-letters tr[data-task-id="${taskId}"]`);
      await row.waitFor(SLOW);
      // On a laptop screen the row fits, its buttons included (long params wrap).
      await page.setViewportSize({ width: 1280, height: 800 });
      const button = (await row.getByRole("button", { name: "Discard" }).boundingBox())!;
      assert.ok(button.x + button.width <= 1280, `the Discard button ends at ${button.x + button.width} px`);
      await row.getByRole("button", { name: "Retry" }).click();
      await row.getByText("Queued again.").waitFor(SLOW);
      const otherRow = page.locator(`#dead-letters tr[data-task-id="${other}"]`);
      await otherRow.getByRole("button", { name: "Discard" }).click();
      await otherRow.getByText("Discarded.").waitFor(SLOW);
      // The retried task fails again (the script always refuses it); Retry all sends it back once more.
      await waitFor(async () => (await deadIds()).join() === taskId, 30_000, "dead again, the other discarded");
      await page.getByRole("button", { name: "Refresh" }).click();
      await page.getByRole("button", { name: "Retry all" }).click();
      await page.getByText("Queued 1 again.").waitFor(SLOW);
      // Dead once more, it goes with Discard all.
      await waitFor(async () => (await deadIds()).join() === taskId, 30_000, "dead again");
      await page.getByRole("button", { name: "Refresh" }).click();
      await page.getByRole("button", { name: "Discard all" }).click();
      await page.getByText("Discarded 1.").waitFor(SLOW);
      assert.deepEqual(await deadIds(), []);
      assert.deepEqual(asked.map((m) => m.split(" ")[0]), ["Discard", "Queue", "Discard"]);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "the dashboard creates a channel, changes its settings, replays its topic through a script and deletes it",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors = watchErrors(page, /status of 40[01]/); // the refused creation below
      page.on("dialog", (d) => d.accept()); // the confirmation before deleting
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByRole("link", { name: "Channels" }).click();
      await page.locator('#channels tr[data-channel="blog_queuing"]').waitFor(SLOW);

      // Refused first (an unknown script), with the API's reason on the page; then created.
      await page.getByText("New channel").click();
      await page.locator("#new-channel #channel-name").fill("alerts");
      await page.locator("#new-channel #channel-ordering").selectOption("channel");
      await page.locator("#new-channel #channel-subscribers").fill("no/such");
      await page.getByRole("button", { name: "Create channel" }).click();
      await page.getByText('Not created: Unknown script "no/such"').waitFor(SLOW);
      await page.locator("#new-channel #channel-subscribers").fill("test/collect");
      await page.locator("#new-channel #channel-anonymousPublish").check();
      await page.getByRole("button", { name: "Create channel" }).click();
      await page.locator("#channel-settings").waitFor(SLOW); // on the new channel's page
      const stored = async () => await (await s.admin("/admin/channels/alerts")).json();
      const created = await stored();
      assert.deepEqual(
        [created.ordering, created.anonymousPublish, created.anonymousSubscribe, created.subscribers],
        ["channel", true, false, ["test/collect"]],
      );
      assert.equal(await page.locator("#channel-settings #channel-ordering").isDisabled(), true);
      // Its subscriber script's progress, under the queue depth.
      await page.locator('#subscribers tr[data-script="test/collect"]', { hasText: "up to date" }).waitFor(SLOW);

      await page.locator("#channel-settings #channel-anonymousSubscribe").check();
      await page.locator("#channel-settings #channel-paused").check();
      await page.locator("#channel-settings #channel-subscribers").fill("");
      await page.locator("#channel-settings #channel-defaultScript").fill("test/echo");
      await page.getByRole("button", { name: "Save settings" }).click();
      await page.getByText("Settings saved.").waitFor(SLOW);
      // The removed subscriber's row goes with the save, not at the next refresh (every 3 s).
      await page.locator('#subscribers tr[data-script="test/collect"]').waitFor({ state: "detached", timeout: 2500 });
      const changed = await stored();
      assert.deepEqual(
        [changed.anonymousSubscribe, changed.subscribers, changed.defaultScript, changed.paused],
        [true, [], "test/echo", true],
      );
      // Paused, what it has queued can be dropped from the page.
      const dropper = await s.device("drop-1");
      const queued = await post(`${s.url}/channels/alerts/invoke`, dropper, { method: "test/echo" });
      assert.equal(queued.status, 202);
      await page.getByRole("button", { name: "Drop queued" }).click();
      await page.getByText("Dropped 1 queued on 1 stream(s).").waitFor(SLOW);
      await page.locator("#channel-settings #channel-paused").uncheck();
      await page.getByRole("button", { name: "Save settings" }).click();
      await waitFor(async () => (await stored()).paused === undefined, 10_000, "resumed from the page");

      // A script added from message 1 runs the topic's kept messages (a replay), then new ones.
      for (const n of [1, 2]) await post(`${s.url}/channels/alerts/messages`, ADMIN, { n });
      await page.locator("#replay-script").fill("test/collect");
      await page.getByRole("button", { name: "Add and replay" }).click();
      await page.getByText("test/collect added: it runs 2 kept message(s), then new ones.").waitFor(SLOW);
      await page.locator('#subscribers tr[data-script="test/collect"]', { hasText: "up to date" }).waitFor(SLOW);
      assert.deepEqual((await stored()).subscribers, ["test/collect"]);
      // Read from KV: waited for, so that a busy machine's late commit is not taken for a missing run.
      const collected = async () =>
        (await s.server.sluice.kv.get<{ ns: number[] }>(["doc", "collected", "list"])).value?.ns ?? [];
      await waitFor(async () => (await collected()).length >= 2, 30_000, "the replay's two runs");
      await new Promise((r) => setTimeout(r, 200)); // a run too many would show by now
      assert.deepEqual(await collected(), [1, 2]);
      const shown = () => page.locator("#channel-settings #channel-subscribers").inputValue();
      await waitFor(
        async () => (await shown()) === "test/collect",
        10_000,
        "the settings form shows the new subscriber",
      );

      await page.getByRole("button", { name: "Delete channel" }).click();
      await page.locator('#channels tr[data-channel="blog_queuing"]').waitFor(SLOW);
      assert.equal(await page.locator('#channels tr[data-channel="alerts"]').count(), 0);
      assert.equal((await s.admin("/admin/channels/alerts")).status, 404);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "the pumps list and a pump's page catch up on readings made while their live stream was down before any update",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const token = await s.device("pump-g");
      await feed(s, token, reading(20, 1, 0));
      await waitFor(async () => (await (await s.admin("/pumps/pump-g")).json()).version === 1, 30_000, "reading 1");
      const page = await browser.newPage();
      const errors = watchErrors(page, /ERR_FAILED/); // the stream's reconnects, refused below
      /** Ends the live stream and keeps it down (Sluice restarting, say) while reading `v` is processed. */
      const outage = async (body: unknown, v: number) => {
        await page.route(/\/channels\/_pumps\/events/, (route) => route.abort());
        await s.server.adapters.find((a) => a.name === "sse")!.close();
        await page.locator("#live.reconnecting").waitFor(SLOW);
        await feed(s, token, body);
        await waitFor(async () => (await (await s.admin("/pumps/pump-g")).json()).version === v, 30_000, `v${v}`);
        await page.unroute(/\/channels\/_pumps\/events/);
        await page.locator("#live.live").waitFor(SLOW);
      };
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.locator('#pumps tr[data-pump-id="pump-g"][data-version="1"]').waitFor(SLOW);
      await page.locator("#live.live").waitFor(SLOW);

      // The list has seen no update yet, so the stream has no seq to resume from: the list is read again.
      await outage(reading(25, 1.5, 1), 2);
      await page.locator('#pumps tr[data-pump-id="pump-g"][data-version="2"]').waitFor(SLOW);
      assert.equal(await cell(page, "pump-g", "temperature"), "25.0");

      // Same on the pump's page: its state, chart and history follow.
      await page.getByRole("link", { name: "pump-g" }).click();
      await page.locator('#history tbody tr[data-seq="2"]').waitFor(SLOW);
      await page.locator("#live.live").waitFor(SLOW);
      await outage(reading(27, 1.6, 2), 3);
      await page.locator('#history tbody tr[data-seq="3"]').waitFor(SLOW);
      await page.locator("#chart svg path.line.temperature[data-points='3']").waitFor(SLOW);
      assert.equal(await page.locator('.pump-page > section [data-field="version"]').first().textContent(), "3");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration("a channel's page with no message yet shows those published while its live stream was down", async () => {
  const s = await startTestSluice();
  const browser = await launchChromium();
  try {
    const created = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "quiet" }) });
    assert.equal(created.status, 201, await created.text());
    const page = await browser.newPage();
    const errors = watchErrors(page, /ERR_FAILED/); // the stream's reconnects, refused below
    await page.goto(`${s.url}/#token=${ADMIN}`);
    await page.goto(`${s.url}/#/channels/quiet`);
    await page.getByText("No messages yet").waitFor(SLOW);
    await page.locator("#live.live").waitFor(SLOW);
    await page.route(/\/channels\/quiet\/events/, (route) => route.abort());
    await s.server.adapters.find((a) => a.name === "sse")!.close();
    await page.locator("#live.reconnecting").waitFor(SLOW);
    const res = await post(`${s.url}/channels/quiet/messages`, ADMIN, { while: "down" });
    assert.equal(res.status, 202, await res.text());
    await page.unroute(/\/channels\/quiet\/events/);
    await page.locator("#live.live").waitFor(SLOW);
    await page.locator('#messages li[data-seq="1"]').waitFor(SLOW);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await s.close();
  }
});

/**
 * The lowest contrast ratio (WCAG) of the text of `els` against what is behind it. Runs in the page,
 * so it is JavaScript text (this file is checked without the DOM's types).
 */
const LOWEST_CONTRAST = `(els) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) ?? []).map(Number);
  const luminance = ([r, g, b]) => {
    const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const behind = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if ((c[3] ?? 1) > 0.5) return c;
    }
    return [255, 255, 255];
  };
  return Math.min(...els.map((el) => {
    const style = getComputedStyle(el);
    const [hi, lo] = [luminance(rgb(el instanceof SVGElement ? style.fill : style.color)), luminance(behind(el))]
      .sort((a, b) => b - a);
    return (hi + 0.05) / (lo + 0.05);
  }));
}`;

/** The lowest contrast ratio of the text of the elements `selector` matches. */
async function lowestContrast(page: Page, selector: string): Promise<number> {
  const ratio = await page.evaluate(
    `(${LOWEST_CONTRAST})([...document.querySelectorAll(${JSON.stringify(selector)})])`,
  );
  assert.equal(typeof ratio, "number", `no contrast for ${selector}: ${ratio}`);
  return ratio as number;
}

integration("the dashboard's coloured text reads at 4.5:1 or more, light and dark", async () => {
  const s = await startTestSluice();
  const browser = await launchChromium();
  try {
    const token = await s.device("pump-c");
    await feed(s, token, reading(20, 1, 0));
    await feed(s, token, reading(22, 1.2, 1));
    // Processed before the page reads it (a busy machine may lag: the page's 404 would count as an error).
    await waitFor(async () => (await (await s.admin("/pumps/pump-c")).json()).version === 2, 30_000, "two readings");
    const page = await browser.newPage();
    const errors = watchErrors(page, /ERR_FAILED/); // the stream refused below
    await page.goto(`${s.url}/#token=${ADMIN}`);
    await page.goto(`${s.url}/#/pumps/pump-c`);
    await page.locator("#chart svg text.tick.pressure").first().waitFor(SLOW);
    const seen: Record<string, number> = {};
    for (const colorScheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme });
      await page.locator("#live.live").waitFor(SLOW);
      for (const selector of ["#live", ".legend", "#chart text.tick"]) {
        seen[`${colorScheme} ${selector}`] = await lowestContrast(page, selector);
      }
    }
    // The badge while the live stream is down.
    await page.route(/\/events/, (route) => route.abort());
    await s.server.adapters.find((a) => a.name === "sse")!.close();
    await page.locator("#live.reconnecting").waitFor(SLOW);
    for (const colorScheme of ["light", "dark"] as const) {
      await page.emulateMedia({ colorScheme });
      seen[`${colorScheme} reconnecting`] = await lowestContrast(page, "#live");
    }
    const low = Object.entries(seen).filter(([, ratio]) => ratio < 4.5).map(([what, r]) => `${what}: ${r.toFixed(2)}`);
    assert.deepEqual(low, []);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await s.close();
  }
});

/** Records `n` refused MQTT messages from devices dev-1…dev-n (malformed JSON). */
function refuseMany(s: TestSluice, n: number): void {
  for (let i = 1; i <= n; i++) {
    s.server.sluice.refused.record({
      protocol: "mqtt",
      device: `dev-${i}`,
      channel: "blog_queuing",
      code: "malformed_json",
      reason: "Payload is not valid JSON",
      payload: `{bad ${i}`,
    });
  }
}

integration("the dashboard lists every refused message, 100 a page with Load more", async () => {
  const s = await startTestSluice();
  const browser = await launchChromium();
  try {
    refuseMany(s, 105);
    await waitFor(async () => (await (await s.admin("/admin/refused")).json()).next, 30_000, "a second page");
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${s.url}/#token=${ADMIN}`);
    await page.getByRole("link", { name: "Dead letters" }).click();
    await page.locator("#refused tbody tr").nth(99).waitFor(SLOW);
    assert.equal(await page.locator("#refused tbody tr").count(), 100);
    await page.getByRole("button", { name: "Load more refused" }).click();
    await page.locator("#refused tbody tr").nth(104).waitFor(SLOW);
    assert.equal(await page.getByRole("button", { name: "Load more refused" }).count(), 0);
    const devices = await page.locator("#refused tbody tr td:nth-child(3)").allTextContents();
    assert.equal(new Set(devices).size, 105);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await s.close();
  }
});

integration("a Refresh while the next refused page loads leaves one Load more, for the table shown", async () => {
  const s = await startTestSluice();
  const browser = await launchChromium();
  try {
    refuseMany(s, 205);
    await waitFor(
      async () => {
        const first = await (await s.admin("/admin/refused")).json();
        return first.next && (await (await s.admin(`/admin/refused?after=${first.next}`)).json()).next;
      },
      30_000,
      "a third page",
    );
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${s.url}/#token=${ADMIN}`);
    await page.getByRole("link", { name: "Dead letters" }).click();
    await page.locator("#refused tbody tr").nth(99).waitFor(SLOW);

    // The second page is held back while the list is refreshed.
    const held = Promise.withResolvers<void>();
    await page.route(/\/admin\/refused\?after=/, async (route) => (await held.promise, await route.continue()));
    const stale = page.waitForEvent("requestfinished", (r) => r.url().includes("/admin/refused?after="));
    await page.getByRole("button", { name: "Load more refused" }).click();
    await page.evaluate(`document.querySelector("#refused").setAttribute("data-old", "")`);
    await page.getByRole("button", { name: "Refresh" }).click();
    await page.locator("#refused:not([data-old]) tbody tr").nth(99).waitFor(SLOW);
    held.resolve();
    await stale;
    await page.unroute(/\/admin\/refused\?after=/);

    // The refreshed table's own Load more goes on: one button, and the rows land in the table shown.
    await page.getByRole("button", { name: "Load more refused" }).click();
    await page.locator("#refused tbody tr").nth(199).waitFor(SLOW);
    assert.equal(await page.getByRole("button", { name: "Load more refused" }).count(), 1);
    assert.equal(await page.locator("#refused tbody tr").count(), 200);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await s.close();
  }
});

integration(
  "a pump's page shows a reading that landed between its first read and the start of its live stream",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const token = await s.device("pump-r");
      await feed(s, token, reading(20, 1, 0));
      await waitFor(async () => (await (await s.admin("/pumps/pump-r")).json()).version === 1, 30_000, "reading 1");
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.locator('#pumps tr[data-pump-id="pump-r"][data-version="1"]').waitFor(SLOW);
      // The pump page's own stream is held back until its state was read and a second reading landed.
      const held = Promise.withResolvers<void>();
      await page.route(/\/channels\/_pumps\/events/, async (route) => (await held.promise, await route.continue()));
      await page.getByRole("link", { name: "pump-r" }).click();
      await page.locator('#history tbody tr[data-seq="1"]').waitFor(SLOW);
      await feed(s, token, reading(24, 1.4, 1));
      await waitFor(async () => (await (await s.admin("/pumps/pump-r")).json()).version === 2, 30_000, "reading 2");
      held.resolve();
      await page.locator('#history tbody tr[data-seq="2"]').waitFor(SLOW);
      assert.equal(await page.locator('.pump-page > section [data-field="version"]').first().textContent(), "2");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

/** A queued reading with a device's token: 202 while the token works, 401 once it is revoked. */
async function invokeStatus(s: TestSluice, token: string): Promise<number> {
  const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
    method: "blog/queues/processor",
    params: { data: "21.5,1.2,45.50:-73.56,2026-11-25T10:00:00Z" },
  });
  await res.body?.cancel();
  return res.status;
}

integration(
  "the devices page creates a device whose token is shown once and works, says why an id is refused, and revokes " +
    "after a confirmation",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      // The browser logs the refused creations (400, 409) itself; nothing else may go wrong.
      const errors = watchErrors(page, /^Failed to load resource: .* (400|409) /);
      const dialogs: string[] = [];
      let answer = false;
      page.on("dialog", (d) => (dialogs.push(d.message()), answer ? d.accept() : d.dismiss()));
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByText("No pumps yet").waitFor(SLOW);
      await page.getByRole("link", { name: "Devices" }).click();
      await page.getByText("No devices yet").waitFor(SLOW);
      assert.equal(await page.title(), "Devices · Sluice");

      // An id the API refuses (HTML in it, too): its message, in words, beside the form; nothing is run.
      await page.getByLabel("Device id").fill("<img src=x onerror=alert(1)>");
      await page.getByRole("button", { name: "Create device" }).click();
      const formStatus = page.locator("#device-form-status");
      await formStatus.getByText("Not created: Invalid body.id: must be 1–64 letters, digits").waitFor(SLOW);
      assert.equal(await page.locator("#device-id").getAttribute("aria-invalid"), "true");
      assert.equal(await page.locator("main img").count(), 0);

      // A device created here: its token shown once, with how to use it, and it works.
      await page.getByLabel("Device id").fill("dev-a");
      await page.getByRole("button", { name: "Create device" }).click();
      const shown = page.locator("#device-created");
      await shown.getByText("Device dev-a created.").waitFor(SLOW);
      assert.equal(await formStatus.textContent(), "");
      assert.equal(await page.locator("#device-id").getAttribute("aria-invalid"), null);
      const token = await page.getByLabel("Token of dev-a").inputValue();
      assert.match(token, /^sl_/);
      const words = await shown.textContent();
      assert.match(words ?? "", /it will not be shown again/);
      assert.match(words ?? "", /Authorization: Bearer <token>/);
      assert.match(words ?? "", /MQTT as the password with dev-a as the username/);
      assert.equal(await invokeStatus(s, token), 202);
      await page.locator('#devices tr[data-device-id="dev-a"]').waitFor(SLOW);
      const listed = (await (await s.admin("/admin/devices")).json()).devices.map((d: { id: string }) => d.id);
      assert.deepEqual(listed, ["dev-a"]);
      // Copy: to the clipboard, or (no permission in a headless browser) selected for Ctrl+C.
      await shown.getByRole("button", { name: "Copy" }).click();
      await shown.getByText(/^(Copied\.|Selected: copy it with Ctrl\+C)/).waitFor(SLOW);

      // An id taken: the API's message. A second device goes into the list in id order.
      await page.getByLabel("Device id").fill("dev-a");
      await page.getByRole("button", { name: "Create device" }).click();
      await formStatus.getByText('Not created: Device "dev-a" already exists').waitFor(SLOW);
      await page.getByLabel("Device id").fill("dev-0");
      await page.getByRole("button", { name: "Create device" }).click();
      await shown.getByText("Device dev-0 created.").waitFor(SLOW);
      const rows = () =>
        page.locator("#devices tbody tr").evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-device-id")));
      assert.deepEqual(await rows(), ["dev-0", "dev-a"]);
      await shown.getByRole("button", { name: "Done, hide the token" }).click();
      assert.equal(await shown.textContent(), "");

      // Revoke asks first and says what happens; cancelled, nothing changes.
      const revoke = page.locator('#devices tr[data-device-id="dev-a"]').getByRole("button", { name: "Revoke" });
      await revoke.click();
      assert.equal(dialogs.length, 1);
      assert.match(dialogs[0]!, /^Revoke device dev-a\? Its token stops working at once/);
      assert.match(dialogs[0]!, /open connections are closed\. Its pump, documents and queued tasks stay/);
      assert.equal(await invokeStatus(s, token), 202);
      assert.deepEqual(await rows(), ["dev-0", "dev-a"]);
      answer = true;
      await revoke.click();
      await page.getByText("Device dev-a revoked: its token no longer works.").waitFor(SLOW);
      assert.deepEqual(await rows(), ["dev-0"]);
      assert.equal(await invokeStatus(s, token), 401);

      // Created again under the same id (the README's rotation): a new token that works.
      await page.getByLabel("Device id").fill("dev-a");
      await page.getByRole("button", { name: "Create device" }).click();
      const again = await page.getByLabel("Token of dev-a").inputValue();
      assert.notEqual(again, token);
      assert.equal(await invokeStatus(s, again), 202);
      assert.deepEqual(await rows(), ["dev-0", "dev-a"]);

      // Ids are shown as text: a list holding HTML (the API refuses such ids; answered here by the browser).
      const html = "<img src=x onerror=alert(1)>";
      await page.route(/\/admin\/devices\?/, (route) =>
        route.fulfill({
          contentType: "application/json",
          body: JSON.stringify({ devices: [{ id: html, createdAt: "2026-11-25T10:00:00Z" }], next: null }),
        }));
      await page.getByRole("button", { name: "Refresh" }).click();
      await page.locator("#devices tbody tr th", { hasText: html }).waitFor(SLOW);
      assert.equal(await page.locator("main img").count(), 0);
      assert.equal(dialogs.length, 2, `a script ran: ${dialogs.at(-1)}`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "the devices page lists 100 devices a page with Load more, fits a 390 px phone and reads at 4.5:1 light and dark",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const ids = Array.from({ length: 105 }, (_, n) => `dev-${String(n + 1).padStart(3, "0")}`);
      ids.push(`long-${"x".repeat(59)}`); // 64 characters, the longest id
      for (const id of ids) await s.device(id);
      const page = await browser.newPage();
      await page.setViewportSize({ width: 390, height: 844 });
      const errors = watchErrors(page);
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByText("No pumps yet").waitFor(SLOW);
      await page.getByRole("link", { name: "Devices" }).click();
      await page.locator("#devices tbody tr").nth(99).waitFor(SLOW);
      assert.equal(await page.locator("#devices tbody tr").count(), 100);
      await page.getByRole("button", { name: "Load more" }).click();
      await page.locator("#devices tbody tr").nth(105).waitFor(SLOW);
      assert.equal(await page.getByRole("button", { name: "Load more" }).count(), 0);
      const shown = await page.locator("#devices tbody tr").evaluateAll((trs) =>
        trs.map((tr) => tr.getAttribute("data-device-id"))
      );
      assert.deepEqual(shown, [...ids].sort());

      // A token shown on the phone, and an error: the page never scrolls sideways.
      await page.getByLabel("Device id").fill(`wide-${"w".repeat(59)}`);
      await page.getByRole("button", { name: "Create device" }).click();
      await page.getByText("it will not be shown again").waitFor(SLOW);
      await page.locator(`#devices tr[data-device-id="wide-${"w".repeat(59)}"]`).waitFor(SLOW);
      const wide = () => page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth");
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      const seen: Record<string, number> = {};
      const selector = "main :is(h1, h2, p, small, label, strong, code, th, td, input, button:not(:disabled), .note)";
      for (const colorScheme of ["light", "dark"] as const) {
        await page.emulateMedia({ colorScheme });
        assert.equal(await wide(), 0, `${colorScheme}: the page scrolls sideways`);
        seen[colorScheme] = await lowestContrast(page, selector);
        await page.evaluate("scrollTo(0, 0)");
        await page.screenshot({ path: new URL(`devices-phone-${colorScheme}.png`, ARTIFACTS).pathname });
      }
      const low = Object.entries(seen).filter(([, ratio]) => ratio < 4.5).map(([what, r]) =>
        `${what}: ${r.toFixed(2)}`
      );
      assert.deepEqual(low, []);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "a dead letter with long params and a long error fits its card at 1280 px, Retry in view, and a phone's width",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const token = await s.device("gateway-with-a-rather-long-device-id-0001");
      // Long words too (a URL, an encoded blob): they must wrap as well as the sentences.
      const err = "Gateway refused the reading: " +
        "https://telemetry.example.com/api/v2/sites/north-plant/pumps/pump-0042/readings?format=json&strict=true " +
        "answered 422 with a body that goes on and on about what was wrong with the reading. ".repeat(6);
      const params = {
        err,
        note: "a long note that a device sent with its task ".repeat(6),
        blob: "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo".repeat(12),
      };
      const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/throws-given", params });
      assert.equal(res.status, 202, await res.text());
      await waitFor(
        async () => (await (await s.admin("/admin/dead-letters")).json()).deadLetters.length === 1,
        30_000,
        "the dead letter",
      );
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByRole("link", { name: "Dead letters" }).click();
      const row = page.locator("#dead-letters tbody tr").first();
      await row.waitFor(SLOW);
      const sizes = await page.evaluate(`(() => {
        const table = document.querySelector("#dead-letters");
        const card = table.closest(".card");
        const style = getComputedStyle(card);
        return {
          table: table.getBoundingClientRect().width,
          card: card.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
          wrap: table.parentElement.scrollWidth - table.parentElement.clientWidth,
        };
      })()`) as { table: number; card: number; wrap: number };
      assert.ok(sizes.table <= sizes.card, `the table is ${sizes.table} px wide in a card of ${sizes.card} px`);
      assert.equal(sizes.wrap, 0, "nothing to scroll sideways");
      for (const name of ["Retry", "Discard"]) {
        const box = (await row.getByRole("button", { name }).boundingBox())!;
        assert.ok(box.x >= 0 && box.x + box.width <= 1280, `${name} spans ${box.x}–${box.x + box.width} px`);
      }
      // The whole error and params can still be read.
      const cells = await row.evaluate((tr) =>
        [...tr.querySelectorAll("[title]")].map((e) => e.getAttribute("title")).join("\n")
      );
      assert.ok(cells.includes(err.trim()), "the whole last error in a title");
      assert.ok(cells.includes(params.blob), "the whole params in a title");
      // A phone: the page does not widen (the table scrolls sideways in its frame).
      await page.setViewportSize({ width: 360, height: 740 });
      const scrollWidth = () => page.evaluate("document.scrollingElement.scrollWidth") as Promise<number>;
      await waitFor(async () => (await scrollWidth()) <= 360, 5000, `the dead letters page at 360 px`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "an address that names no pump, channel or page says so once, without asking Sluice again and again",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors = watchErrors(page, /status of 40[01]/);
      const asked: string[] = [];
      page.on("request", (r) => asked.push(new URL(r.url()).pathname));
      // A `%` that encodes nothing in a hand-made link: the token is taken as written (refused here).
      await page.goto(`${s.url}/#token=abc%`);
      await page.getByText("The token was refused").waitFor(SLOW);
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByText("No pumps yet").waitFor(SLOW);

      await page.goto(`${s.url}/#/pumps/a%20b`);
      await page.getByText('No pump can be called "a b"').waitFor(SLOW);
      await page.goto(`${s.url}/#/channels/bad%20name`);
      await page.getByText('No channel can be called "bad name"').waitFor(SLOW);
      const before = asked.length;
      await new Promise((r) => setTimeout(r, 4000)); // past a retry (3 s)
      assert.deepEqual(asked.slice(before), [], "nothing asked again");
      assert.ok(!asked.some((p) => p.startsWith("/channels/bad")), "no live stream of a channel that cannot be");

      await page.goto(`${s.url}/#/pumps/%ZZ`);
      await page.getByText("No such page.").waitFor(SLOW);
      assert.equal(await page.title(), "Not found · Sluice");

      // An empty message is not published (the API would refuse it as well).
      await page.goto(`${s.url}/#/channels/blog_queuing`);
      await page.locator("#publish-body").fill("  ");
      await page.getByRole("button", { name: "Publish" }).click();
      await page.getByText("Not published: write a message first").waitFor(SLOW);
      // JSON goes as written: a number JSON cannot hold is refused as over HTTP, not published as null.
      await page.locator("#publish-body").fill('{"x": 1e400}');
      await page.getByRole("button", { name: "Publish" }).click();
      await page.getByText(/Not published: .*a number too large for JSON/).waitFor(SLOW);
      assert.equal((await (await s.admin("/admin/channels/blog_queuing/stats")).json()).messages, 0);

      // A phone's width: the settings forms fit it (a long script name in a select once widened the page).
      await page.setViewportSize({ width: 360, height: 740 });
      await page.locator("#publish-body").waitFor(SLOW);
      const scrollWidth = () => page.evaluate("document.scrollingElement.scrollWidth") as Promise<number>;
      assert.ok((await scrollWidth()) <= 360, `a channel's page is ${await scrollWidth()} px wide`);
      await page.goto(`${s.url}/#/channels`);
      await page.getByText("New channel").click();
      await page.locator("details[open] .settings").waitFor(SLOW);
      assert.ok((await scrollWidth()) <= 360, `the channels page is ${await scrollWidth()} px wide`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "with more channels than the API gives a page, the channel list shows them all with their counts",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      // 130 of them: more than the 100 GET /admin/channels answers unless asked for more.
      for (let i = 0; i < 130; i += 26) {
        await Promise.all(Array.from({ length: 26 }, async (_, j) => {
          const body = JSON.stringify({ name: `ch_${String(i + j).padStart(3, "0")}` });
          const res = await s.admin("/admin/channels", { method: "POST", body });
          assert.equal(res.status, 201, await res.text());
        }));
      }
      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByRole("link", { name: "Channels" }).click();
      await page.locator('#channels tr[data-channel="ch_129"] [data-field="queued"]', { hasText: /^\d+$/ }).waitFor(
        SLOW,
      );
      const rows = await page.locator('#channels tr[data-channel^="ch_"]').count();
      assert.equal(rows, 130);
      assert.equal(
        await page.locator('#channels tr[data-channel^="ch_"] [data-field="queued"]', { hasText: "error" }).count(),
        0,
      );
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration("with more than one page of pumps, the list shows the first page whole, then sorts them all", async () => {
  const s = await startTestSluice({ RATE_LIMIT: "off" });
  const browser = await launchChromium();
  try {
    const ids = Array.from({ length: 520 }, (_, i) => `p-${i + 1}`);
    const tokens = new Map<string, string>();
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map(async (id) => {
          tokens.set(id, await s.device(id));
          await feed(s, tokens.get(id)!, reading(20, 1, 0));
        }),
      );
    }
    await waitFor(async () => (await (await s.admin("/pumps?limit=1000")).json()).pumps.length === 520, 60_000);
    const page = await browser.newPage();
    await page.goto(`${s.url}/#token=${ADMIN}`);
    await page.getByText("500+ pumps").waitFor(SLOW);
    const shown = () =>
      page.locator("#pumps tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-pump-id")));
    // The server's first 500 in its order (p-1, p-10, p-100, …): no pump missing between two shown.
    const firstPage = (await (await s.admin("/pumps?limit=500")).json()).pumps.map((p: { id: string }) => p.id);
    assert.deepEqual(await shown(), firstPage);
    // A live change of a pump on the next page waits for that page (shown now, it would sit after pumps not shown);
    // one on this page shows. The feed keeps their order: once the second shows, the first came and was left out.
    const later = ids.find((id) => !firstPage.includes(id))!;
    await feed(s, tokens.get(later)!, reading(30, 1, 1));
    await feed(s, tokens.get(firstPage[3])!, reading(31, 1, 1));
    await page.locator(`#pumps tbody tr[data-pump-id="${firstPage[3]}"][data-version="2"]`).waitFor(SLOW);
    assert.deepEqual(await shown(), firstPage, `${later} waits for its page`);
    await page.getByRole("button", { name: "Load more pumps" }).click();
    await page.getByText("520 pumps").waitFor(SLOW);
    assert.deepEqual(await shown(), ids, "all here: p-2 before p-10");
  } finally {
    await browser.close();
    await s.close();
  }
});

integration(
  "the replay form refuses a blank script, a message number that is not one and one past the topic's head in the " +
    "form, and asks to confirm only valid input",
  async () => {
    const s = await startTestSluice();
    const browser = await launchChromium();
    try {
      const made = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      assert.equal(made.status, 201, await made.text());
      for (const n of [1, 2]) await post(`${s.url}/channels/alerts/messages`, ADMIN, { n });
      const page = await browser.newPage();
      const errors = watchErrors(page);
      const dialogs: string[] = [];
      page.on("dialog", (d) => (dialogs.push(d.message()), d.accept()));
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByText("No pumps yet").waitFor(SLOW);
      await page.evaluate(() => location.hash = "#/channels/alerts");
      const form = page.locator("#replay");
      await form.waitFor(SLOW);
      const add = () => form.getByRole("button", { name: "Add and replay" }).click();

      // Blanks pass `required`: refused in words, beside the form, with no confirmation asked.
      await page.locator("#replay-script").fill("   ");
      await add();
      await form.getByText("Not added: write the script's path first (like stats/daily_v2).").waitFor(SLOW);
      assert.equal(await page.locator("#replay-script").getAttribute("aria-invalid"), "true");
      assert.deepEqual(dialogs, []);

      // Past the head + 1 (the next message), which the page reads again: refused, saying where the topic is.
      await page.locator("#replay-script").fill("test/collect");
      await page.locator("#replay-from").fill("999");
      await add();
      await form.getByText("Not added: the topic has 2 message(s): start from 3 at most (the next message).")
        .waitFor(SLOW);
      assert.equal(await page.locator("#replay-script").getAttribute("aria-invalid"), null);
      assert.equal(await page.locator("#replay-from").getAttribute("aria-invalid"), "true");
      // A number the browser accepts but no message can have.
      await page.locator("#replay-from").fill("1e20");
      await add();
      await form.getByText('Not added: "1e20" is not a message number (a whole number from 1 on).').waitFor(SLOW);
      assert.deepEqual(dialogs, []);
      assert.deepEqual((await (await s.admin("/admin/channels/alerts")).json()).subscribers, []);

      // Valid input: asked once, then added.
      await page.locator("#replay-from").fill("1");
      await add();
      await form.getByText("test/collect added: it runs 2 kept message(s), then new ones.").waitFor(SLOW);
      assert.deepEqual(dialogs, [
        "Add test/collect as a subscriber and run it over every kept message from #1 on?",
      ]);
      assert.equal(await page.locator("#replay-from").getAttribute("aria-invalid"), null);
      assert.deepEqual((await (await s.admin("/admin/channels/alerts")).json()).subscribers, ["test/collect"]);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);

integration(
  "on a pump whose old readings were trimmed, time travel starts at the oldest version it can rebuild",
  async () => {
    const s = await startTestSluice({ READING_RETENTION: "1h" });
    const browser = await launchChromium();
    try {
      const token = await s.device("pump-t");
      for (let i = 1; i <= 4; i++) await feed(s, token, reading(20 + i, 1.2, i));
      await waitFor(
        async () => (await (await s.admin("/pumps/pump-t")).json()).version === 4,
        30_000,
        "the pump's four readings",
      );
      // The trimmer works on events at their keys: a reading still in the inbox is not there yet.
      const kv = s.server.sluice.kv;
      await waitFor(async () => (await kv.get(["ev", "p/pump-t", 4])).versionstamp !== null, 30_000, "the moves");
      // A sweep past every event (as once they are an hour old) keeps only the newest: versions 3 and 4 are left.
      assert.equal(await s.server.sluice.trimmer!.trim("p/pump-t", Date.now() + 1), 3);

      const page = await browser.newPage();
      const errors = watchErrors(page);
      await page.goto(`${s.url}/#token=${ADMIN}`);
      await page.getByRole("link", { name: "pump-t" }).click();
      await page.locator('#time-travel-state[data-version="4"]').waitFor(SLOW);
      // The slider's start rebuilds (the base the trimmed readings were folded into), and so does an older number.
      await page.locator("#tt-range").press("Home");
      await page.locator('#time-travel-state[data-version="3"]').waitFor(SLOW);
      assert.equal(await page.locator("#tt-range").getAttribute("min"), "3");
      assert.equal(await page.locator("#tt-version").getAttribute("min"), "3");
      assert.equal(await page.locator("#time-travel-state [data-field='readings']").textContent(), "3");
      await page.locator("#tt-version").fill("4");
      await page.locator("#tt-version").dispatchEvent("change");
      await page.locator('#time-travel-state[data-version="4"]').waitFor(SLOW);
      await page.locator("#tt-version").fill("1");
      await page.locator("#tt-version").dispatchEvent("change");
      await page.locator('#time-travel-state[data-version="3"]').waitFor(SLOW);
      assert.equal(await page.locator("#tt-version").inputValue(), "3");
      assert.equal(await page.getByText("no longer kept (READING_RETENTION): ask for").count(), 0);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await s.close();
    }
  },
);
