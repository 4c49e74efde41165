import assert from "node:assert/strict";
import { testManifest } from "../fixtures/manifest.ts";
import { SseClient, WsClient } from "../helpers/clients.ts";
import mqtt from "mqtt";
import { brokerUrl, connect, connectDevice } from "../helpers/mqtt.ts";
import { subscriberRunId } from "../../core/task_id.ts";
import {
  ADMIN,
  deployInstance,
  inBothModes,
  integration,
  post,
  startTestSluice,
  type TestSluice,
  waitFor,
} from "../helpers/sluice.ts";

const CSV = "21.5,1.2,1:1,2026-11-25T10:00:00Z";

function patch(s: TestSluice, name: string, body: unknown) {
  return s.admin(`/admin/channels/${name}`, { method: "PATCH", body: JSON.stringify(body) });
}

async function collected(s: TestSluice): Promise<number[]> {
  return (await s.server.sluice.kv.get<{ ns: number[] }>(["doc", "collected", "list"])).value?.ns ?? [];
}

inBothModes(
  "a channel's settings change in place: flags at once, an added subscriber runs from then on, a removed one stops",
  async (env) => {
    const s = await startTestSluice(env);
    try {
      const created = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "feed" }) });
      assert.equal(created.status, 201);
      const token = await s.device("d1");
      for (const n of [1, 2]) assert.equal((await post(`${s.url}/channels/feed/messages`, token, { n })).status, 202);
      assert.equal((await post(`${s.url}/channels/feed/messages`, null, { n: 0 })).status, 401);

      const open = await patch(s, "feed", { anonymousPublish: true });
      assert.equal(open.status, 200);
      const config = await open.json();
      assert.deepEqual(
        [config.name, config.ordering, config.anonymousPublish, config.anonymousSubscribe, config.subscribers],
        ["feed", "device", true, false, []],
      );
      assert.equal(config.createdAt, (await created.json()).createdAt);
      assert.equal((await post(`${s.url}/channels/feed/messages`, null, { n: 3 })).status, 202);

      // Added after messages 1-3: it runs for 4 and 5 only.
      assert.equal((await patch(s, "feed", { subscribers: ["test/collect"] })).status, 200);
      for (const n of [4, 5]) assert.equal((await post(`${s.url}/channels/feed/messages`, token, { n })).status, 202);
      await waitFor(async () => (await collected(s)).length === 2, 10_000, "messages 4 and 5 collected");
      assert.deepEqual(await collected(s), [4, 5]);

      // Removed: message 6 is not run; added again, it starts after 6.
      assert.equal((await patch(s, "feed", { subscribers: [] })).status, 200);
      assert.equal((await post(`${s.url}/channels/feed/messages`, token, { n: 6 })).status, 202);
      assert.equal((await patch(s, "feed", { subscribers: ["test/collect"] })).status, 200);
      assert.equal((await post(`${s.url}/channels/feed/messages`, token, { n: 7 })).status, 202);
      await waitFor(async () => (await collected(s)).length === 3, 10_000, "message 7 collected");
      assert.deepEqual(await collected(s), [4, 5, 7]);
      // GET /tasks/:id knows the runs it made from the ones it did not (published before it was added again).
      const run = (seq: number) => s.admin(`/tasks/${subscriberRunId("m/feed", seq, "test/collect")}`);
      const [ran, before] = [await run(7), await run(6)];
      assert.deepEqual([ran.status, (await ran.json()).status], [200, "done"]);
      assert.equal(before.status, 404);
      await before.body?.cancel();

      const one = await s.admin("/admin/channels/feed");
      assert.equal(one.status, 200);
      assert.deepEqual((await one.json()).subscribers, ["test/collect"]);
      assert.equal((await s.admin("/admin/channels/nosuch")).status, 404);
      const listed = await (await s.admin("/admin/channels")).json();
      const feed = listed.channels.find((c: { name: string }) => c.name === "feed");
      assert.deepEqual([feed.anonymousPublish, feed.subscribers], [true, ["test/collect"]]);
    } finally {
      await s.close();
    }
  },
);

integration("channels are listed a page at a time, by name, each once, with next to page on", async () => {
  const s = await startTestSluice();
  try {
    const made: string[] = [];
    for (let i = 0; i < 230; i += 46) {
      await Promise.all(Array.from({ length: 46 }, async (_, j) => {
        const name = `paged_${String(i + j).padStart(3, "0")}`;
        made.push(name);
        const res = await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name }) });
        assert.equal(res.status, 201);
        await res.body?.cancel();
      }));
    }
    const seen: string[] = [];
    let pages = 0;
    for (let after: string | null = ""; after !== null; pages++) {
      const page = await (await s.admin(`/admin/channels?limit=100&after=${encodeURIComponent(after)}`)).json();
      seen.push(...page.channels.map((c: { name: string }) => c.name));
      after = page.next ?? null; // (an answer without next ends the paging)
    }
    const paged = seen.filter((n) => n.startsWith("paged_"));
    assert.deepEqual(paged, made.sort(), "every channel once, by name");
    assert.equal(new Set(seen).size, seen.length);
    assert.equal(pages, Math.ceil(seen.length / 100));
    const first = await (await s.admin("/admin/channels")).json();
    assert.equal(first.channels.length, 100, "100 a page unless asked");
    assert.equal(first.next, first.channels[99].name);
    for (const limit of ["0", "1001", "abc"]) {
      const res = await s.admin(`/admin/channels?limit=${limit}`);
      assert.equal(res.status, 400, `limit=${limit}`);
      await res.body?.cancel();
    }
    // A repeated parameter is refused, not read as its first value (a page of 1 where 500 was meant too).
    const twice = await s.admin("/admin/channels?limit=1&limit=500");
    assert.equal(twice.status, 400);
    assert.match((await twice.json()).error.message, /query\.limit: given 2 times; give it once/);
  } finally {
    await s.close();
  }
});

inBothModes(
  "a subscriber script added with from: 1 replays the topic's kept history in order, then goes on with new messages",
  async (env) => {
    const s = await startTestSluice(env);
    try {
      const subscribe = (channel: string, body: unknown) =>
        s.admin(`/admin/channels/${channel}/subscribers`, { method: "POST", body: JSON.stringify(body) });
      assert.equal((await s.admin("/admin/channels", { method: "POST", body: '{"name":"hist"}' })).status, 201);
      for (const n of [1, 2, 3, 4, 5]) {
        assert.equal((await post(`${s.url}/channels/hist/messages`, ADMIN, { n })).status, 202);
      }

      const added = await subscribe("hist", { script: "test/collect", from: 1 });
      assert.equal(added.status, 201);
      assert.deepEqual(await added.json(), { channel: "hist", script: "test/collect", from: 1, head: 5 });
      // Message 3 fails once (the fixture's doing): the replay waits for its retry, as a subscriber does.
      await waitFor(async () => (await collected(s)).length === 5, 15_000, "the history replayed");
      assert.equal((await post(`${s.url}/channels/hist/messages`, ADMIN, { n: 6 })).status, 202);
      await waitFor(async () => (await collected(s)).length === 6, 10_000, "a new message after the replay");
      assert.deepEqual(await collected(s), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual((await (await s.admin("/admin/channels/hist")).json()).subscribers, ["test/collect"]);

      const twice = await subscribe("hist", { script: "test/collect", from: 1 });
      assert.deepEqual([twice.status, (await twice.json()).error.code], [409, "conflict"]);

      // Removed and added again from message 5: 5 and 6 run again, not 1-4.
      assert.equal((await patch(s, "hist", { subscribers: [] })).status, 200);
      assert.equal((await subscribe("hist", { script: "test/collect", from: 5 })).status, 201);
      await waitFor(async () => (await collected(s)).length === 8, 10_000, "5 and 6 again");
      assert.deepEqual((await collected(s)).slice(6), [5, 6]);

      for (
        const [channel, body, status] of [
          ["hist", { script: "test/echo", from: 8 }, 400], // the head is 6: from 7 at most
          ["hist", { script: "test/echo", from: 0 }, 400],
          ["hist", { script: "no/such" }, 400],
          ["hist", { script: "test/echo", extra: 1 }, 400],
          ["nosuch", { script: "test/echo" }, 404],
          ["_pumps", { script: "test/echo" }, 403],
        ] as const
      ) {
        const res = await subscribe(channel, body);
        assert.equal(res.status, status, `${channel} ${JSON.stringify(body)}: ${await res.text()}`);
      }
      // Without from: the next message only.
      const next = await subscribe("hist", { script: "test/echo" });
      assert.deepEqual(await next.json(), { channel: "hist", script: "test/echo", from: 7, head: 6 });
    } finally {
      await s.close();
    }
  },
);

integration(
  "a replay runs again a message whose run died in an earlier subscription: its old end is forgotten",
  async () => {
    const s = await startTestSluice({ MAX_ATTEMPTS: "2", RETRY_BASE_MS: "500" });
    try {
      const subscribe = () =>
        s.admin("/admin/channels/again/subscribers", {
          method: "POST",
          body: JSON.stringify({ script: "test/flaky", from: 1 }),
        });
      assert.equal((await s.admin("/admin/channels", { method: "POST", body: '{"name":"again"}' })).status, 201);
      assert.equal((await post(`${s.url}/channels/again/messages`, ADMIN, { failures: 9 })).status, 202);
      const id = subscriberRunId("m/again", 1, "test/flaky");
      const deadIds = async () =>
        ((await (await s.admin("/admin/dead-letters")).json()).deadLetters as { taskId: string }[]).map((d) =>
          d.taskId
        );
      assert.equal((await subscribe()).status, 201);
      await waitFor(async () => (await deadIds()).includes(id), 10_000, "the first subscription's run died");

      assert.equal((await patch(s, "again", { subscribers: [] })).status, 200);
      assert.equal((await subscribe()).status, 201);
      // Replayed: not dead (nor listed to retry) while its new run is under way.
      assert.deepEqual(await deadIds(), []);
      const status = (await (await s.admin(`/tasks/${id}`)).json()).status;
      assert.ok(["queued", "running", "retrying"].includes(status), JSON.stringify(status));
    } finally {
      await s.close();
    }
  },
);

integration(
  "changing a channel refuses its ordering, unknown scripts and fields, Sluice's channels and unknown ones",
  async () => {
    const s = await startTestSluice();
    try {
      const cases: [string, unknown, number, RegExp][] = [
        ["blog_queuing", { ordering: "none" }, 400, /ordering .*cannot change/],
        ["blog_queuing", { ordering: "sideways" }, 400, /ordering/],
        ["blog_queuing", { subscribers: ["no/such"] }, 400, /Unknown script "no\/such"/],
        ["blog_queuing", { defaultScript: "no/such" }, 400, /Unknown script "no\/such"/],
        ["blog_queuing", { color: "red" }, 400, /color/],
        ["blog_queuing", { anonymousPublish: "yes" }, 400, /anonymousPublish/],
        ["_pumps", { anonymousSubscribe: true }, 403, /belongs to Sluice/],
        ["nosuch", { anonymousPublish: true }, 404, /does not exist/],
      ];
      for (const [name, body, status, message] of cases) {
        const res = await patch(s, name, body);
        const text = await res.text();
        assert.equal(res.status, status, `${name} ${JSON.stringify(body)}: ${text}`);
        assert.match(JSON.parse(text).error.message, message);
      }
      // The ordering may be sent back as it is (a whole config, say).
      assert.equal((await patch(s, "blog_queuing", { ordering: "device", anonymousSubscribe: false })).status, 200);
      // The default script can be removed: a bare CSV reading then names no script.
      const token = await s.device("d1");
      const bare = () => post(`${s.url}/channels/blog_queuing/invoke`, token, JSON.stringify(CSV));
      assert.equal((await bare()).status, 202);
      const res = await patch(s, "blog_queuing", { defaultScript: null });
      assert.equal(res.status, 200);
      assert.equal("defaultScript" in (await res.json()), false);
      const refused = await bare();
      assert.equal(refused.status, 400);
      assert.match((await refused.json()).error.message, /no default script/);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a deleted channel refuses messages and tasks, can be created again, and a deleted default stays deleted",
  async () => {
    const s = await startTestSluice();
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      const token = await s.device("d1");
      assert.equal((await (await post(`${s.url}/channels/alerts/messages`, token, { n: 1 })).json()).seq, 1);

      const deleted = await s.admin("/admin/channels/alerts", { method: "DELETE" });
      assert.equal(deleted.status, 200);
      assert.deepEqual(await deleted.json(), { name: "alerts", deleted: true });
      assert.equal((await post(`${s.url}/channels/alerts/messages`, token, { n: 2 })).status, 404);
      assert.equal((await s.admin("/admin/channels/alerts", { method: "DELETE" })).status, 404);
      assert.equal((await s.admin("/admin/channels/_pumps", { method: "DELETE" })).status, 403);
      const names = async () =>
        (await (await s.admin("/admin/channels")).json()).channels.map((c: { name: string }) => c.name);
      assert.deepEqual(await names(), ["blog_queuing"]);

      // Created again: its topic goes on from the seqs it had.
      assert.equal(
        (await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) })).status,
        201,
      );
      assert.equal((await (await post(`${s.url}/channels/alerts/messages`, token, { n: 3 })).json()).seq, 2);

      assert.equal((await s.admin("/admin/channels/blog_queuing", { method: "DELETE" })).status, 200);
      assert.equal((await post(`${s.url}/channels/blog_queuing/invoke`, token, JSON.stringify(CSV))).status, 404);
      await s.restart();
      assert.deepEqual(await names(), ["alerts"]);
    } finally {
      await s.close();
    }
  },
);

integration("a channel changed or deleted on one instance is seen by another sharing the KV", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-channels-" });
  const kv = await Deno.openKv(`${dir}/shared.kv`);
  const [a, b] = [await deployInstance(kv, `${dir}/shared.kv`), await deployInstance(kv, `${dir}/shared.kv`)];
  const admin = (url: string, method: string, body?: unknown) =>
    fetch(url, { method, headers: { authorization: `Bearer ${ADMIN}` }, body: JSON.stringify(body) });
  try {
    assert.equal((await admin(`${a.url}/admin/channels`, "POST", { name: "news" })).status, 201);
    const anonymous = () => post(`${b.url}/channels/news/messages`, null, { n: 1 }).then((r) => r.status);
    assert.equal(await anonymous(), 401); // b now holds the channel's settings in its cache
    assert.equal((await admin(`${a.url}/admin/channels/news`, "PATCH", { anonymousPublish: true })).status, 200);
    await waitFor(async () => (await anonymous()) === 202, 2_000, "b to accept anonymous messages");
    assert.equal((await admin(`${a.url}/admin/channels/news`, "DELETE")).status, 200);
    await waitFor(async () => (await anonymous()) === 404, 2_000, "b to refuse messages to the deleted channel");
  } finally {
    await a.close();
    await b.close();
    kv.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

integration(
  "subscriptions a channel change no longer allows end: anonymous ones when refused, every one when deleted",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0", MQTT_ANONYMOUS_CONNECT: "true" });
    const mqttClients: Awaited<ReturnType<typeof connect>>[] = [];
    try {
      const body = { name: "open", anonymousSubscribe: true };
      assert.equal((await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(body) })).status, 201);
      const token = await s.device("d1");
      const anonWs = await WsClient.connect(`${s.url}/ws`);
      const deviceWs = await WsClient.connect(`${s.url}/ws?token=${token}`);
      for (const c of [anonWs, deviceWs]) {
        assert.equal((await c.request("Subscribe", { channel: "open" })).status, "success");
      }
      const anonSse = await SseClient.open(`${s.url}/channels/open/events`);
      assert.equal(anonSse.response.status, 200);
      const anonMqtt = await connect(brokerUrl(s));
      const deviceMqtt = await connectDevice(brokerUrl(s), "d1", token);
      mqttClients.push(anonMqtt, deviceMqtt);
      const closed = (c: typeof anonMqtt) => new Promise<void>((resolve) => c.once("close", () => resolve()));
      const [anonMqttClosed, deviceMqttClosed] = [closed(anonMqtt), closed(deviceMqtt)];
      for (const c of mqttClients) assert.equal((await c.subscribeAsync("open/messages", { qos: 1 }))[0]?.qos, 1);

      assert.equal((await patch(s, "open", { anonymousSubscribe: false })).status, 200);
      await waitFor(() => anonWs.ended.length === 1, 5_000, "the anonymous WebSocket subscription to end");
      assert.deepEqual([anonWs.ended[0]!.channel, anonWs.ended[0]!.error.code], ["open", "unauthorized"]);
      await anonSse.done; // the stream ended, saying why
      assert.match(anonSse.events.at(-1)!.data, /does not accept anonymous subscribers/);
      await anonMqttClosed;
      assert.equal((await post(`${s.url}/channels/open/messages`, token, { n: 1 })).status, 202);
      await waitFor(() => deviceWs.pushes.length === 1, 5_000, "the device's push");
      assert.deepEqual([anonWs.pushes.length, deviceWs.ended.length, deviceMqtt.connected], [0, 0, true]);

      assert.equal((await s.admin("/admin/channels/open", { method: "DELETE" })).status, 200);
      await waitFor(() => deviceWs.ended.length === 1, 5_000, "the device's WebSocket subscription to end");
      assert.equal(deviceWs.ended[0]!.error.code, "not_found");
      await deviceMqttClosed;
      await Promise.all([anonWs.close(), deviceWs.close()]);
    } finally {
      for (const c of mqttClients) await c.endAsync(true).catch(() => {});
      await s.close();
    }
  },
);

integration("an anonymous MQTT session kept across disconnects (clean: false) gets nothing once refused", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0", MQTT_ANONYMOUS_CONNECT: "true" });
  const clients: mqtt.MqttClient[] = [];
  try {
    const body = { name: "news", anonymousSubscribe: true };
    assert.equal((await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(body) })).status, 201);
    const token = await s.device("d1");
    // A device keeps following the channel, so its messages are still re-published on the broker.
    const device = await connectDevice(brokerUrl(s), "d1", token);
    clients.push(device);
    assert.equal((await device.subscribeAsync("news/messages", { qos: 1 }))[0]?.qos, 1);
    const anonymous = await connect(brokerUrl(s), { clientId: "anon-1", clean: false });
    clients.push(anonymous);
    assert.equal((await anonymous.subscribeAsync("news/messages", { qos: 1 }))[0]?.qos, 1);
    const closed = new Promise<void>((resolve) => anonymous.once("close", () => resolve()));
    assert.equal((await patch(s, "news", { anonymousSubscribe: false })).status, 200);
    await closed;
    // Published while it is away: a stored subscription would queue it for the session.
    assert.equal((await post(`${s.url}/channels/news/messages`, token, { n: 42 })).status, 202);
    await new Promise((r) => setTimeout(r, 300));
    // Listening before the CONNACK: what a stored session had queued comes right after it.
    const got: string[] = [];
    const again = mqtt.connect(brokerUrl(s), { clientId: "anon-1", clean: false, reconnectPeriod: 0 });
    clients.push(again);
    again.on("message", (_topic, payload) => got.push(new TextDecoder().decode(payload)));
    await new Promise<void>((resolve, reject) => {
      again.once("connect", () => resolve());
      again.once("error", reject);
    });
    const seen: string[] = [];
    device.on("message", (_topic, payload) => seen.push(new TextDecoder().decode(payload)));
    assert.equal((await post(`${s.url}/channels/news/messages`, token, { n: 43 })).status, 202);
    await waitFor(() => seen.includes('{"n":43}'), 5_000, "the device to get message 43");
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(got, []);
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await s.close();
  }
});

integration(
  "a persistent MQTT session never gets the channel refused in the same SUBSCRIBE as a granted one",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0", MQTT_ANONYMOUS_CONNECT: "true" });
    const clients: mqtt.MqttClient[] = [];
    try {
      const open = { name: "open", anonymousSubscribe: true };
      assert.equal((await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(open) })).status, 201);
      assert.equal((await s.admin("/admin/channels", { method: "POST", body: '{"name":"closed"}' })).status, 201);
      const token = await s.device("d1");
      const device = await connectDevice(brokerUrl(s), "d1", token); // keeps "closed" followed
      clients.push(device);
      await device.subscribeAsync("closed/messages", { qos: 1 });
      const got: string[] = [];
      const listen = (c: mqtt.MqttClient) => c.on("message", (topic) => got.push(topic));
      const anonymous = await connect(brokerUrl(s), { clientId: "anon-2", clean: false });
      clients.push(anonymous);
      listen(anonymous);
      // One SUBSCRIBE, one filter granted and one refused (mqtt.js calls that an error).
      await new Promise<void>((resolve) =>
        anonymous.subscribe({ "open/messages": { qos: 1 }, "closed/messages": { qos: 1 } }, () => resolve())
      );
      const refused = await (await s.admin("/admin/refused")).json();
      assert.deepEqual(refused.refused.map((r: { channel: string }) => r.channel), ["closed"]);
      assert.equal((await post(`${s.url}/channels/closed/messages`, token, { secret: 1 })).status, 202);
      await anonymous.endAsync();
      assert.equal((await post(`${s.url}/channels/closed/messages`, token, { secret: 2 })).status, 202);
      assert.equal((await post(`${s.url}/channels/open/messages`, token, { fine: 3 })).status, 202);
      const again = mqtt.connect(brokerUrl(s), { clientId: "anon-2", clean: false, reconnectPeriod: 0 });
      clients.push(again);
      listen(again);
      await waitFor(() => got.includes("open/messages"), 5_000, "the open channel's message queued meanwhile");
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(got, ["open/messages"]);
    } finally {
      for (const c of clients) await c.endAsync(true).catch(() => {});
      await s.close();
    }
  },
);

integration("a persistent MQTT session away longer than the broker's sweep still gets what was published", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  const clients: mqtt.MqttClient[] = [];
  try {
    const token = await s.device("d1");
    const away = await connectDevice(brokerUrl(s), "d1", token, { clientId: "d1-away", clean: false });
    clients.push(away);
    await away.subscribeAsync("blog_queuing/messages", { qos: 1 });
    await away.endAsync();
    // Nobody connected subscribes: the channel stopped being followed once two sweeps (5 s each) passed.
    await new Promise((r) => setTimeout(r, 11_000));
    assert.equal((await post(`${s.url}/channels/blog_queuing/messages`, token, { while: "away" })).status, 202);
    const got: string[] = [];
    const back = mqtt.connect(brokerUrl(s), {
      username: "d1",
      password: token,
      clientId: "d1-away",
      clean: false,
      reconnectPeriod: 0,
    });
    clients.push(back);
    back.on("message", (_topic, payload) => got.push(new TextDecoder().decode(payload)));
    await waitFor(() => got.length > 0, 5_000, "the message queued while away");
    assert.deepEqual(got, ['{"while":"away"}']);
  } finally {
    for (const c of clients) await c.endAsync(true).catch(() => {});
    await s.close();
  }
});

integration(
  "a subscriber script removed in the middle of a batch and added again runs none of what came meanwhile",
  async () => {
    const s = await startTestSluice();
    try {
      const body = { name: "feed", subscribers: ["test/slow"] };
      assert.equal((await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(body) })).status, 201);
      const token = await s.device("d1");
      const ran = async (n: number) => (await s.server.sluice.kv.get(["doc", "slow", String(n)])).value !== null;
      assert.equal((await post(`${s.url}/channels/feed/messages`, token, { n: 1, ms: 1500 })).status, 202);
      const run1 = subscriberRunId("m/feed", 1, "test/slow");
      await waitFor(async () => (await (await s.admin(`/tasks/${run1}`)).json()).status === "running", 10_000, "run 1");
      assert.equal((await patch(s, "feed", { subscribers: [] })).status, 200);
      assert.equal((await post(`${s.url}/channels/feed/messages`, token, { n: 2, ms: 10 })).status, 202);
      assert.equal((await patch(s, "feed", { subscribers: ["test/slow"] })).status, 200);
      assert.equal((await post(`${s.url}/channels/feed/messages`, token, { n: 3, ms: 10 })).status, 202);
      await waitFor(() => ran(3), 10_000, "message 3 to run");
      assert.deepEqual([await ran(1), await ran(2)], [true, false]);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a replay from 1 while messages arrive keeps the records of its own runs: every replayed message has its new dead letter",
  async () => {
    const s = await startTestSluice({ MAX_ATTEMPTS: "1" });
    try {
      await s.admin("/admin/channels", {
        method: "POST",
        body: JSON.stringify({ name: "again", subscribers: ["test/fail"] }),
      });
      const token = await s.device("replayer");
      const publish = async (n: number) =>
        await (await post(`${s.url}/channels/again/messages`, token, { n })).body?.cancel();
      const N = 800;
      for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => publish(i + j + 1)));
      const dead = async () => (await Array.fromAsync(s.server.sluice.kv.list({ prefix: ["dead"] }))).length;
      await waitFor(async () => (await dead()) >= N, 90_000, "every run dead");
      await s.admin("/admin/channels/again", { method: "PATCH", body: JSON.stringify({ subscribers: [] }) });
      // Publishing goes on while the script is added again from 1: a publish wakes its lane at once.
      let stop = false;
      const publishing = (async () => {
        while (!stop) await publish(0), await new Promise((r) => setTimeout(r, 2));
      })();
      await new Promise((r) => setTimeout(r, 20));
      const added = await (await s.admin("/admin/channels/again/subscribers", {
        method: "POST",
        body: JSON.stringify({ script: "test/fail", from: 1 }),
      })).json();
      stop = true;
      await publishing;
      await waitFor(
        async () => (await (await s.admin("/admin/channels/again/stats")).json()).subscribers[0].behind === 0,
        90_000,
        "the replay",
      );
      const missing = [];
      for (let seq = 1; seq <= added.head; seq++) {
        const id = subscriberRunId("m/again", seq, "test/fail");
        if (!(await s.server.sluice.kv.get(["dead", id])).value) missing.push(seq);
      }
      assert.deepEqual(missing, [], "replayed messages without their dead letter");
    } finally {
      await s.close();
    }
  },
);

integration(
  "a subscriber added again while its earlier subscription still runs a long batch is refused (409), not started twice",
  async () => {
    const s = await startTestSluice({ SCRIPT_TIMEOUT_MS: "10000" });
    try {
      await s.admin("/admin/channels", {
        method: "POST",
        body: JSON.stringify({ name: "long", subscribers: ["test/slow"] }),
      });
      const token = await s.device("long-runner");
      const send = async (n: number, ms: number) =>
        await (await post(`${s.url}/channels/long/messages`, token, { n, ms })).body?.cancel();
      const runOf = (n: number) => s.admin(`/tasks/${subscriberRunId("m/long", n, "test/slow")}`);
      const statusOf = async (n: number) => (await (await runOf(n)).json()).status;
      // Message 1 runs alone for 6 s; meanwhile 49 more of 300 ms each are sent, which the next batch takes together:
      // 14.7 s, longer than the 10 s a change waits for it. (Timed sleeps raced on a slow machine.)
      await send(1, 6000);
      await waitFor(async () => (await statusOf(1)) === "running", 10_000, "message 1 running");
      await Promise.all(Array.from({ length: 49 }, (_, i) => send(i + 2, 300)));
      assert.equal(await statusOf(1), "running", "the 49 messages took longer to send than message 1 to run");
      await waitFor(async () => (await statusOf(2)) === "running", 10_000, "the batch of messages 2–50 running");
      const patch = (subscribers: string[]) =>
        s.admin("/admin/channels/long", { method: "PATCH", body: JSON.stringify({ subscribers }) });
      assert.equal((await patch([]).then(async (r) => (await r.body?.cancel(), r))).status, 200);
      // The batch goes on: a message of it waits its turn (queued); one after it will not run, and its run says so.
      assert.equal((await (await runOf(50)).json()).status, "queued");
      const unrun = await runOf(
        1 + (await (await post(`${s.url}/channels/long/messages`, token, { n: 51 })).json()).seq - 1,
      );
      assert.equal(unrun.status, 404);
      assert.match((await unrun.json()).error.message, /will not happen: script "test\/slow" no longer subscribes/);
      const again = await patch(["test/slow"]);
      assert.equal(again.status, 409);
      assert.match(
        (await again.json()).error.message,
        /still running a batch of channel "long" from before it was removed/,
      );
    } finally {
      await s.close();
    }
  },
);

integration("Sluice's own _pumps channel has no settings to read, but its counts are there", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("p1");
    await post(`${s.url}/blog/queues/feed`, token, { temperature: 20, pressure: 1, coordinates: "1:1" });
    await waitFor(async () => (await (await s.admin("/admin/channels/_pumps/stats")).json()).messages === 1);
    const settings = await s.admin("/admin/channels/_pumps");
    assert.equal(settings.status, 404);
    assert.match((await settings.json()).error.message, /belongs to Sluice and has no settings.*\/stats/);
    assert.deepEqual(await (await s.admin("/admin/channels/_pumps/stats")).json(), {
      channel: "_pumps",
      partitions: 0,
      queued: 0,
      retrying: 0,
      messages: 1,
      subscribers: [],
    });
    assert.equal((await s.admin("/admin/channels/_other/stats")).status, 404);
  } finally {
    await s.close();
  }
});

integration(
  "a channel deleted with tasks queued still counts them in its stats and /metrics until they are done",
  async () => {
    const s = await startTestSluice({ RETRY_BASE_MS: "600000" });
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "jobs" }) });
      const token = await s.device("d-jobs");
      for (let i = 0; i < 3; i++) {
        const res = await post(`${s.url}/channels/jobs/invoke`, token, { method: "test/fail", params: { i } });
        assert.equal(res.status, 202);
      }
      // The first fails and waits 10 minutes for its retry: the partition holds all three.
      await waitFor(async () => (await (await s.admin("/admin/channels/jobs/stats")).json()).retrying === 1);
      assert.equal((await s.admin("/admin/channels/jobs", { method: "DELETE" })).status, 200);
      const stats = await s.admin("/admin/channels/jobs/stats");
      assert.equal(stats.status, 200);
      assert.deepEqual(
        await stats.json(),
        { channel: "jobs", partitions: 1, queued: 3, retrying: 1, messages: 0, subscribers: [], deleted: true },
      );
      await waitFor(async () =>
        /^sluice_queue_depth\{channel="jobs"\} 3$/m.test(await (await fetch(`${s.url}/metrics`)).text())
      );
    } finally {
      await s.close();
    }
  },
);

integration(
  "a replay forgets the old runs' kept results, and waits (409) for an old run retried from the dead letters",
  async () => {
    const s = await startTestSluice({ MAX_ATTEMPTS: "2", RETRY_BASE_MS: "2000" });
    try {
      const kv = s.server.sluice.kv;
      const create = { name: "rep", subscribers: ["test/fixable"] };
      assert.equal((await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(create) })).status, 201);
      const token = await s.device("rep-1");
      const run = (seq: number) => subscriberRunId("m/rep", seq, "test/fixable");
      const status = async (seq: number) => await (await s.admin(`/tasks/${run(seq)}`)).json();
      const publish = async () => (await (await post(`${s.url}/channels/rep/messages`, token, {})).json()).seq;
      const replay = () =>
        s.admin("/admin/channels/rep/subscribers", {
          method: "POST",
          body: JSON.stringify({ script: "test/fixable", from: 1 }),
        });
      const unsubscribe = async () =>
        await (await s.admin("/admin/channels/rep", { method: "PATCH", body: '{"subscribers":[]}' })).body?.cancel();

      // Message 1 dies; retried from the dead letters, its run waits for its second attempt in _retry.
      assert.equal(await publish(), 1);
      await waitFor(async () => (await status(1)).status === "dead", 20_000, "run 1 dead");
      assert.equal((await s.admin(`/admin/dead-letters/${run(1)}/retry`, { method: "POST" })).status, 202);
      await waitFor(async () => (await status(1)).status === "retrying", 10_000, "the retried run failing once");
      await unsubscribe();
      const refused = await replay();
      assert.equal(refused.status, 409);
      assert.match((await refused.json()).error.message, /retried from the dead letters, is still queued/);
      await waitFor(async () => (await status(1)).status === "dead", 20_000, "the retried run dead again");

      // Fixed: the replay's run is done at its first attempt, and says so (not the old run's attempts).
      await kv.set(["doc", "fixes", "fixable"], true);
      assert.equal((await replay()).status, 201);
      const done = await waitFor(
        async () => {
          const t = await status(1);
          return t.status === "done" ? t : null;
        },
        20_000,
        "the replayed run",
      );
      assert.deepEqual([done.attempts, done.result.fixedOnAttempt], [1, 1]);

      // A run that took retries keeps its result in KV; replayed, the new run's is shown.
      await kv.delete(["doc", "fixes", "fixable"]);
      assert.equal(await publish(), 2);
      await waitFor(async () => (await status(2)).status === "retrying", 10_000, "run 2 failing once");
      await kv.set(["doc", "fixes", "fixable"], true);
      await waitFor(async () => (await status(2)).attempts === 2, 20_000, "run 2 done at its second attempt");
      await unsubscribe();
      assert.equal((await replay()).status, 201);
      await waitFor(
        async () => {
          const t = await status(2);
          return t.status === "done" && t.attempts === 1 && t.result.fixedOnAttempt === 1;
        },
        20_000,
        "the replay's run of message 2 shown, not the old one's",
      );
    } finally {
      await s.close();
    }
  },
);

integration("a WebSocket subscription under way while its channel is deleted does not outlive it", async () => {
  const s = await startTestSluice();
  const ws = await WsClient.connect(`${s.url}/ws?token=${await s.device("racer")}`);
  try {
    await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "race" }) });
    // The subscription is held where it joins the topic; the channel is deleted meanwhile.
    const topics = s.server.sluice.topics;
    const subscribe = topics.subscribe.bind(topics);
    const held = Promise.withResolvers<void>();
    let entered = false;
    (topics as { subscribe: typeof subscribe }).subscribe = async (...args) => {
      entered = true;
      await held.promise;
      return await subscribe(...args);
    };
    const reply = ws.request("Subscribe", { channel: "race" });
    await waitFor(() => entered, 10_000, "the subscription to start");
    assert.equal((await s.admin("/admin/channels/race", { method: "DELETE" })).status, 200);
    await new Promise((r) => setTimeout(r, 100)); // the deletion's re-check of the session's subscriptions
    held.resolve();
    const answer = await reply;
    assert.equal(answer.status, "failure", JSON.stringify(answer));
    await waitFor(async () => /^sluice_topic_subscribers 0$/m.test(await (await fetch(`${s.url}/metrics`)).text()));
  } finally {
    await ws.close();
    await s.close();
  }
});

integration("an SSE stream opened while its channel is deleted ends with the deletion, not later", async () => {
  const s = await startTestSluice();
  try {
    await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "race-sse" }) });
    // The request's access check is held; the channel is deleted meanwhile.
    const channels = s.server.sluice.channels;
    const get = channels.get.bind(channels);
    const held = Promise.withResolvers<void>();
    let holding = true, entered = false;
    (channels as { get: typeof get }).get = async (name) => {
      const answer = await get(name);
      if (holding && name === "race-sse") entered = true, await held.promise;
      return answer;
    };
    const opening = SseClient.open(`${s.url}/channels/race-sse/events`, { authorization: `Bearer ${ADMIN}` });
    await waitFor(() => entered, 10_000, "the stream's access check");
    holding = false;
    assert.equal((await s.admin("/admin/channels/race-sse", { method: "DELETE" })).status, 200);
    await new Promise((r) => setTimeout(r, 100)); // the deletion's re-check of the open streams
    held.resolve();
    const sse = await opening;
    await Promise.race([sse.done, new Promise((r) => setTimeout(r, 5000))]);
    assert.ok(sse.events.some((e) => e.event === "error"), JSON.stringify(sse.events));
    await waitFor(async () => /^sluice_topic_subscribers 0$/m.test(await (await fetch(`${s.url}/metrics`)).text()));
    await sse.close();
  } finally {
    await s.close();
  }
});

integration(
  "a device asking for its own message's run that will not happen is told why; another device is refused",
  async () => {
    const s = await startTestSluice();
    try {
      const create = { name: "gone-sub", subscribers: ["test/slow"] };
      assert.equal((await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(create) })).status, 201);
      const sender = await s.device("sender");
      const other = await s.device("other");
      const publish = async (n: number) =>
        await (await post(`${s.url}/channels/gone-sub/messages`, sender, { n, ms: 1000 })).body?.cancel();
      const run = (seq: number) => `/tasks/${subscriberRunId("m/gone-sub", seq, "test/slow")}`;
      const get = (path: string, token: string) =>
        fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      await publish(1);
      await waitFor(async () => (await (await get(run(1), sender)).json()).status === "running");
      await publish(2); // after the batch that runs message 1 began: not in it
      const removed = await s.admin("/admin/channels/gone-sub", { method: "PATCH", body: '{"subscribers":[]}' });
      assert.equal(removed.status, 200);
      const own = await get(run(2), sender);
      assert.equal(own.status, 404);
      assert.match((await own.json()).error.message, /will not happen: script "test\/slow" no longer subscribes/);
      const theirs = await get(run(2), other);
      assert.equal(theirs.status, 403);
      await theirs.body?.cancel();
    } finally {
      await s.close();
    }
  },
);

integration("a subscriber add refused for the channel's limit of 20 leaves the script's old dead letters", async () => {
  const s = await startTestSluice({ MAX_ATTEMPTS: "1" });
  try {
    const create = { name: "full", subscribers: ["test/fail"] };
    assert.equal((await s.admin("/admin/channels", { method: "POST", body: JSON.stringify(create) })).status, 201);
    const token = await s.device("full-1");
    assert.equal((await post(`${s.url}/channels/full/messages`, token, {})).status, 202);
    const run = subscriberRunId("m/full", 1, "test/fail");
    await waitFor(async () => (await (await s.admin(`/tasks/${run}`)).json()).status === "dead", 20_000, "run dead");
    const others = Object.keys(testManifest).filter((script) => script !== "test/fail").slice(0, 20);
    const filled = await patch(s, "full", { subscribers: others });
    assert.equal(filled.status, 200, await filled.text());
    const refused = await s.admin("/admin/channels/full/subscribers", {
      method: "POST",
      body: JSON.stringify({ script: "test/fail", from: 1 }),
    });
    assert.equal(refused.status, 400);
    assert.match((await refused.json()).error.message, /20 subscriber scripts, the most it may have/);
    const dead = await (await s.admin("/admin/dead-letters")).json();
    assert.deepEqual(dead.deadLetters.map((d: { taskId: string }) => d.taskId), [run]);
  } finally {
    await s.close();
  }
});

integration(
  "a channel deleted with tasks queued is created again only with its ordering until they are done",
  async () => {
    const s = await startTestSluice({ RETRY_BASE_MS: "600000" });
    try {
      const create = (ordering: string) =>
        s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "line", ordering }) });
      assert.equal((await create("channel")).status, 201);
      const token = await s.device("d-line");
      for (let i = 0; i < 2; i++) {
        const res = await post(`${s.url}/channels/line/invoke`, token, { method: "test/fail", params: { i } });
        assert.equal(res.status, 202);
      }
      // The first fails and waits 10 minutes for its retry: both stay queued in the channel's one partition.
      await waitFor(async () => (await (await s.admin("/admin/channels/line/stats")).json()).retrying === 1);
      assert.equal((await s.admin("/admin/channels/line", { method: "DELETE" })).status, 200);
      // By device, the device's next tasks would run in a partition of their own, before its two old ones.
      const refused = await create("device");
      const answer = await refused.json();
      assert.equal(refused.status, 409, JSON.stringify(answer));
      assert.equal(answer.error.code, "conflict");
      assert.match(answer.error.message, /deleted with 2 tasks still queued, ordered by "channel"/);
      assert.equal((await create("channel")).status, 201);
    } finally {
      await s.close();
    }
  },
);

integration(
  "concurrent changes of one channel: one DELETE wins and the others find no channel (404); PATCHes that lose say so",
  async () => {
    const s = await startTestSluice();
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "busy" }) });
      const patches = await Promise.all(
        Array.from({ length: 10 }, (_, i) => patch(s, "busy", { anonymousPublish: i % 2 === 0 })),
      );
      const patched = await Promise.all(patches.map(async (r) => [r.status, (await r.json()).error?.code]));
      assert.ok(patched.some(([status]) => status === 200));
      for (const [status, code] of patched) {
        assert.ok(status === 200 || (status === 409 && code === "concurrency_conflict"), `${status} ${code}`);
      }
      const deletes = await Promise.all(
        Array.from({ length: 10 }, () => s.admin("/admin/channels/busy", { method: "DELETE" })),
      );
      await Promise.all(deletes.map((r) => r.body?.cancel()));
      assert.deepEqual(deletes.map((r) => r.status).sort(), [200, ...Array(9).fill(404)]);
    } finally {
      await s.close();
    }
  },
);

inBothModes(
  "a paused channel takes messages but runs none of its scripts, through a restart, and resumed runs them in order",
  async (env) => {
    const s = await startTestSluice(env);
    try {
      const made = await s.admin("/admin/channels", {
        method: "POST",
        body: JSON.stringify({ name: "held", subscribers: ["test/collect"] }),
      });
      assert.equal(made.status, 201);
      const paused = await patch(s, "held", { paused: true });
      assert.equal(paused.status, 200);
      assert.equal((await paused.json()).paused, true);
      const token = await s.device("held-1");
      const invoke = async (channel: string, n: number) => {
        const res = await post(`${s.url}/channels/${channel}/invoke`, token, { method: "test/echo", params: { n } });
        assert.equal(res.status, 202);
        return (await res.json()).taskId as string;
      };
      const tasks = [await invoke("held", 1), await invoke("held", 2)];
      for (const n of [1, 2, 4]) {
        assert.equal((await post(`${s.url}/channels/held/messages`, token, { n })).status, 202);
      }
      const status = async (id: string) => (await (await s.admin(`/tasks/${id}`)).json()).status;
      // Nothing of the channel runs, while a task queued after them on another channel is done.
      const quiet = async () => {
        const other = await invoke("blog_queuing", 0);
        await waitFor(async () => (await status(other)) === "done", 10_000, "the other channel's task");
        await waitFor(() => s.server.sluice.runner.draining === 0, 10_000, "no lane draining");
        assert.deepEqual([await status(tasks[0]!), await status(tasks[1]!)], ["queued", "queued"]);
        assert.deepEqual(await collected(s), []);
      };
      await quiet();
      const stats = await (await s.admin("/admin/channels/held/stats")).json();
      assert.equal(stats.queued, 2);
      await s.restart(); // the start-up sweep finds the lanes behind, and leaves them
      await quiet();
      const listed = await (await s.admin("/admin/channels")).json();
      assert.equal(listed.channels.find((c: { name: string }) => c.name === "held").paused, true);

      const resumed = await patch(s, "held", { paused: false });
      assert.equal(resumed.status, 200);
      assert.equal((await resumed.json()).paused, undefined);
      for (const id of tasks) await waitFor(async () => (await status(id)) === "done", 10_000, `task ${id}`);
      await waitFor(async () => (await collected(s)).length === 3, 10_000, "messages collected");
      assert.deepEqual(await collected(s), [1, 2, 4]);
      const bad = await patch(s, "held", { paused: "yes" });
      assert.equal(bad.status, 400);
      await bad.body?.cancel();
    } finally {
      await s.close();
    }
  },
);

inBothModes(
  "a paused channel's queue can be purged: its tasks and subscriber runs are dropped, shown dead, and what comes after runs",
  async (env) => {
    const s = await startTestSluice(env);
    try {
      const made = await s.admin("/admin/channels", {
        method: "POST",
        body: JSON.stringify({ name: "jam", subscribers: ["test/collect"] }),
      });
      assert.equal(made.status, 201);
      const purge = (name: string) => s.admin(`/admin/channels/${name}/purge`, { method: "POST" });
      const running = await purge("jam");
      assert.equal(running.status, 409);
      assert.match((await running.json()).error.message, /is not paused: pause it first/);
      for (const [name, status] of [["nosuch", 404], ["_pumps", 403]] as const) {
        const res = await purge(name);
        assert.equal(res.status, status, name);
        await res.body?.cancel();
      }
      assert.equal((await patch(s, "jam", { paused: true })).status, 200);
      const [a, b] = [await s.device("jam-a"), await s.device("jam-b")];
      const invoke = async (token: string, n: number) => {
        const res = await post(`${s.url}/channels/jam/invoke`, token, { method: "test/echo", params: { n } });
        assert.equal(res.status, 202);
        return (await res.json()).taskId as string;
      };
      const dropped = [
        await invoke(a, 1),
        await invoke(a, 2),
        await invoke(a, 3),
        await invoke(b, 1),
        await invoke(b, 2),
      ];
      for (const n of [1, 2]) assert.equal((await post(`${s.url}/channels/jam/messages`, a, { n })).status, 202);
      const purged = await purge("jam");
      assert.equal(purged.status, 200);
      assert.deepEqual(await purged.json(), { channel: "jam", purged: 7, streams: 3, busy: 0 });
      assert.equal((await (await s.admin("/admin/channels/jam/stats")).json()).queued, 0);
      const view = async (id: string) => await (await s.admin(`/tasks/${encodeURIComponent(id)}`)).json();
      for (const id of dropped) {
        const t = await view(id);
        assert.deepEqual([t.status, t.discarded], ["dead", true], id);
        assert.match(t.error, /^Dropped by a purge of its channel at \d{4}-/);
      }
      // What comes after the purge waits for the resume, then runs.
      const after = await invoke(a, 4);
      assert.equal((await post(`${s.url}/channels/jam/messages`, a, { n: 4 })).status, 202);
      assert.equal((await patch(s, "jam", { paused: false })).status, 200);
      await waitFor(async () => (await view(after)).status === "done", 10_000, "the task after the purge");
      await waitFor(async () => (await collected(s)).length === 1, 10_000, "the message after the purge");
      assert.deepEqual(await collected(s), [4]);
      assert.equal((await view(dropped[0]!)).status, "dead");
      const again = await purge("jam");
      assert.equal(again.status, 409, "resumed: not paused any more");
      await again.body?.cancel();
    } finally {
      await s.close();
    }
  },
);

integration(
  "a purge keeps what was queued after it was asked, and a replay over purged runs shows them done",
  async () => {
    const s = await startTestSluice();
    try {
      const made = await s.admin("/admin/channels", {
        method: "POST",
        body: JSON.stringify({ name: "cut", subscribers: ["test/collect"] }),
      });
      assert.equal(made.status, 201);
      const token = await s.device("cut-1");
      const invoke = async (n: number) => {
        const res = await post(`${s.url}/channels/cut/invoke`, token, { method: "test/echo", params: { n } });
        assert.equal(res.status, 202);
        return (await res.json()).taskId as string;
      };
      assert.equal((await patch(s, "cut", { paused: true })).status, 200);
      const before = await invoke(1);
      for (const n of [1, 2]) assert.equal((await post(`${s.url}/channels/cut/messages`, token, { n })).status, 202);
      // A task that lands once the purge was asked, before it reads the channel's heads.
      const kv = s.server.sluice.kv;
      const list = kv.list.bind(kv);
      let late: Promise<string> | null = null;
      kv.list = ((selector: Deno.KvListSelector, options?: Deno.KvListOptions) => {
        if (late || !("start" in selector) || selector.start[0] !== "head") return list(selector, options);
        late = new Promise((r) => setTimeout(r, 5)).then(() => invoke(2));
        const pending = late;
        return (async function* () {
          await pending;
          yield* list(selector, options);
        })();
      }) as typeof kv.list;
      const purged = await s.admin("/admin/channels/cut/purge", { method: "POST" });
      kv.list = list;
      assert.deepEqual(await purged.json(), { channel: "cut", purged: 3, streams: 2, busy: 0 });
      const view = async (id: string) => await (await s.admin(`/tasks/${encodeURIComponent(id)}`)).json();
      assert.equal((await view(before)).status, "dead");
      const after = await late!;
      assert.equal((await view(after)).status, "queued", "queued after the purge was asked: kept");
      assert.equal((await patch(s, "cut", { paused: false, subscribers: [] })).status, 200);
      await waitFor(async () => (await view(after)).status === "done", 10_000, "the kept task");
      // Replayed from message 1, the purged runs run, and say so.
      const replay = await s.admin("/admin/channels/cut/subscribers", {
        method: "POST",
        body: JSON.stringify({ script: "test/collect", from: 1 }),
      });
      assert.equal(replay.status, 201);
      await waitFor(async () => (await collected(s)).length === 2, 10_000, "the replayed runs");
      assert.equal((await view(subscriberRunId("m/cut", 1, "test/collect"))).status, "done");
    } finally {
      await s.close();
    }
  },
);

integration("a resume wakes a partition whose new tasks still wait in the writer's inbox", async () => {
  const s = await startTestSluice();
  try {
    assert.equal((await s.admin("/admin/channels", { method: "POST", body: '{"name":"burst"}' })).status, 201);
    const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => s.device(`burst-${i}`)));
    const invoke = async (token: string) => {
      const res = await post(`${s.url}/channels/burst/invoke`, token, { method: "test/echo" });
      assert.equal(res.status, 202);
      return (await res.json()).taskId as string;
    };
    const status = async (id: string) => (await (await s.admin(`/tasks/${id}`)).json()).status;
    const first = await invoke(tokens[0]!);
    await waitFor(async () => (await status(first)) === "done", 10_000, "the first task");
    assert.equal((await patch(s, "burst", { paused: true })).status, 200);
    // A burst: the inbox holds its moves back, and the caught-up partition's head key lags behind its task.
    const ids = await Promise.all(tokens.map((t) => invoke(t)));
    assert.ok(s.server.sluice.committer.exactHead("t/burst/burst-0")! > 1);
    assert.equal((await patch(s, "burst", { paused: false })).status, 200);
    for (const id of ids) await waitFor(async () => (await status(id)) === "done", 10_000, `task ${id}`);
  } finally {
    await s.close();
  }
});

inBothModes("a resume that lands while a drain reads the paused setting is not lost", async (env) => {
  const s = await startTestSluice(env);
  try {
    assert.equal((await s.admin("/admin/channels", { method: "POST", body: '{"name":"race"}' })).status, 201);
    const token = await s.device("race-1");
    const status = async (id: string) => (await (await s.admin(`/tasks/${id}`)).json()).status;
    const invoke = async (channel: string) => {
      const res = await post(`${s.url}/channels/${channel}/invoke`, token, { method: "test/echo" });
      assert.equal(res.status, 202);
      return (await res.json()).taskId as string;
    };
    const warm = await invoke("blog_queuing"); // the workers' first start is slow
    await waitFor(async () => (await status(warm)) === "done", 20_000, "a first task");
    assert.equal((await patch(s, "race", { paused: true })).status, 200);
    // The drain's read of the setting takes a while (a KV read after a channel change), and the resume lands then.
    const registry = s.server.sluice.channels;
    const get = registry.get.bind(registry);
    let reading: (() => void) | null = null;
    const read = new Promise<void>((r) => reading = r);
    registry.get = async (name: string) => {
      const config = await get(name);
      if (name === "race" && reading && new Error().stack?.includes("#paused")) {
        reading();
        reading = null;
        await new Promise((r) => setTimeout(r, 300));
      }
      return config;
    };
    const id = await invoke("race");
    await read;
    assert.equal((await patch(s, "race", { paused: false })).status, 200);
    registry.get = get;
    await waitFor(async () => (await status(id)) === "done", 10_000, "the task after the resume");
  } finally {
    await s.close();
  }
});
