import assert from "node:assert/strict";
import mqtt from "mqtt";
import { integration, post, recordingLogger, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";
import { brokerUrl, connectDevice, mqttAdapter } from "../helpers/mqtt.ts";
import { CONNACK, connectPacket, packet, PINGREQ, PINGRESP, RawMqtt, str, SUBACK } from "../helpers/mqtt_raw.ts";

const PUBLISH = 3;

/** Connects `clientId` again without clean session and collects what it is sent (the queue of its session). */
function comeBack(s: TestSluice, device: string, token: string, clientId: string) {
  const got: string[] = [];
  const client = mqtt.connect(brokerUrl(s), {
    username: device,
    password: token,
    clientId,
    clean: false,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  });
  client.on("message", (_topic, payload) => got.push(new TextDecoder().decode(payload)));
  const connack = new Promise<boolean>((resolve, reject) => {
    client.once("connect", (packet) => resolve(packet.sessionPresent));
    client.once("error", reject);
  });
  return { client, got, connack };
}

/** `promise`, or a failure once `ms` passed without it. */
async function inTime<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error(`No ${what} in ${ms} ms`)), ms)
  );
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Makes reading channel `name` take 400 ms while `slow`: restoring a kept session's subscription to it waits. */
function slowChannel(s: TestSluice, name: string): { slow: boolean } {
  const channels = s.server.sluice.channels;
  const get = channels.get.bind(channels);
  const control = { slow: true };
  channels.get = async (channel: string) => {
    if (control.slow && channel === name) await new Promise((r) => setTimeout(r, 400));
    return await get(channel);
  };
  return control;
}

/** Leaves a kept session subscribed to `channels` (each at its QoS; one name: at QoS 1) behind, away. */
async function leaveAway(
  s: TestSluice,
  device: string,
  token: string,
  clientId: string,
  channels: Record<string, 0 | 1> | string,
) {
  const away = await connectDevice(brokerUrl(s), device, token, { clientId, clean: false });
  const qos: Record<string, 0 | 1> = typeof channels === "string" ? { [channels]: 1 } : channels;
  for (const channel of Object.keys(qos)) await away.subscribeAsync(`${channel}/messages`, { qos: qos[channel]! });
  await away.endAsync();
}

async function publish(s: TestSluice, token: string, channel: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    const res = await post(`${s.url}/channels/${channel}/messages`, token, { n: i });
    assert.equal(res.status, 202);
    await res.body?.cancel();
  }
}

integration(
  "a kept MQTT session away is queued at most MQTT_MAX_QUEUED messages, the oldest, and the drops are counted",
  async () => {
    const log = recordingLogger();
    const s = await startTestSluice({ MQTT_PORT: "0", MQTT_MAX_QUEUED: "5" }, undefined, { log });
    let back: mqtt.MqttClient | null = null;
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      const token = await s.device("q1");
      await leaveAway(s, "q1", token, "q1-away", "alerts");
      await publish(s, token, "alerts", 8);
      const metrics = async () => await (await s.admin("/metrics")).text();
      await waitFor(
        async () => /^sluice_mqtt_queue_dropped_total 3$/m.test(await metrics()),
        10_000,
        "three drops counted",
      );

      const again = comeBack(s, "q1", token, "q1-away");
      back = again.client;
      assert.equal(await again.connack, true);
      await waitFor(() => again.got.length >= 5, 5_000, "the queued messages");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(again.got, [1, 2, 3, 4, 5].map((n) => JSON.stringify({ n })));
      // Its queue taken, the session is queued messages again.
      await publish(s, token, "alerts", 1);
      await waitFor(() => again.got.length === 6, 5_000, "a message published after it came back");
      const warnings = log.lines.filter((l) => l.includes("MQTT_MAX_QUEUED"));
      assert.equal(warnings.length, 1, "one warning for the three drops");
      assert.match(warnings[0]!, /device q1 \(client id "q1-away"\)/);
    } finally {
      await back?.endAsync(true).catch(() => {});
      await s.close();
    }
  },
);

integration(
  "a connected kept session gets a burst over MQTT_MAX_QUEUED while it acknowledges nothing, and stays connected",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0", MQTT_MAX_QUEUED: "5" });
    let raw: RawMqtt | null = null;
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      const token = await s.device("b1");
      // A raw client that sends no PUBACK: every message of the burst stays in flight to it, queued for its session.
      raw = await RawMqtt.open(mqttAdapter(s).port!);
      await raw.send(connectPacket({ clientId: "b1-late", username: "b1", password: token, flags: 0xc0 }));
      assert.ok(await raw.expect(CONNACK));
      await raw.send(packet(0x82, [0, 1, ...str("alerts/messages"), 1]));
      assert.ok(await raw.expect(SUBACK));
      await publish(s, token, "alerts", 20);
      const published = () => raw!.packets.filter((p) => p.type === PUBLISH);
      await waitFor(() => published().length >= 20, 10_000, "the whole burst");
      await raw.send(PINGREQ);
      assert.ok(await raw.expect(PINGRESP), "still connected");
      assert.match(await (await s.admin("/metrics")).text(), /^sluice_mqtt_queue_dropped_total 0$/m);
    } finally {
      raw?.close();
      await s.close();
    }
  },
);

integration(
  "a kept session asking QoS 2 is granted it and sent QoS 1; what was in flight when it dropped comes again marked DUP",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    const raws: RawMqtt[] = [];
    /** A raw client of `k1-raw` without clean session; it acknowledges nothing. */
    const connect = async () => {
      const raw = await RawMqtt.open(mqttAdapter(s).port!);
      raws.push(raw);
      await raw.send(connectPacket({ clientId: "k1-raw", username: "k1", password: token, flags: 0xc0 }));
      assert.ok(await raw.expect(CONNACK));
      return raw;
    };
    const published = (raw: RawMqtt) => raw.packets.filter((p) => p.type === PUBLISH);
    let token = "";
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      token = await s.device("k1");
      const first = await connect();
      await first.send(packet(0x82, [0, 1, ...str("alerts/messages"), 2]));
      const suback = await first.expect(SUBACK);
      assert.deepEqual([...suback!.body], [0, 1, 2], "QoS 2 granted: its messages go at QoS 1 (as Sluice sends them)");
      await publish(s, token, "alerts", 3);
      await waitFor(() => published(first).length >= 3, 10_000, "the first three");
      first.close();
      await waitFor(() => mqttAdapter(s).connections?.() === 0, 5_000, "the broker to see it gone");
      await publish(s, token, "alerts", 1); // while it is away: never sent yet
      const again = await connect();
      await waitFor(() => published(again).length >= 4, 10_000, "the session's queue");
      // DUP (0x08) on the three sent before, not on the one queued while away; QoS 1 (0x02) on all.
      assert.deepEqual(published(again).map((p) => p.flags & 0x0e), [0x0a, 0x0a, 0x0a, 0x02]);
    } finally {
      for (const raw of raws) raw.close();
      await s.close();
    }
  },
);

integration(
  "revoking a device ends its kept MQTT sessions: created again, it finds no session and nothing queued",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    let back: mqtt.MqttClient | null = null;
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      const publisher = await s.device("pub-1");
      await leaveAway(s, "r1", await s.device("r1"), "r1-away", "alerts");
      await publish(s, publisher, "alerts", 3);
      const revoked = await s.admin("/admin/devices/r1", { method: "DELETE" });
      assert.ok(revoked.status < 300, `revoked: ${revoked.status}`);
      await revoked.body?.cancel();
      await publish(s, publisher, "alerts", 2);

      const again = comeBack(s, "r1", await s.device("r1"), "r1-away");
      back = again.client;
      assert.equal(await again.connack, false, "the revoked device's session is gone");
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(again.got, []);
    } finally {
      await back?.endAsync(true).catch(() => {});
      await s.close();
    }
  },
);

integration(
  "a kept session away loses its subscription to a channel deleted meanwhile: the channel created again is not sent to it",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    let back: mqtt.MqttClient | null = null;
    try {
      const create = (name = "alerts") =>
        s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name }) });
      await create();
      await create("others");
      const token = await s.device("g1");
      await leaveAway(s, "g1", token, "g1-away", { alerts: 1, others: 1 });
      await publish(s, token, "alerts", 1); // queued for it before the delete: not sent either
      const deleted = await s.admin("/admin/channels/alerts", { method: "DELETE" });
      assert.ok(deleted.status < 300, `deleted: ${deleted.status}`);
      await deleted.body?.cancel();
      await new Promise((r) => setTimeout(r, 200));
      await create();
      await publish(s, token, "alerts", 2);

      const again = comeBack(s, "g1", token, "g1-away");
      back = again.client;
      assert.equal(await again.connack, true, "the session is kept, with its other subscription");
      await new Promise((r) => setTimeout(r, 500));
      await publish(s, token, "alerts", 1);
      await publish(s, token, "others", 1);
      await waitFor(() => again.got.length > 0, 5_000, "the other channel's message");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(again.got, [JSON.stringify({ n: 1 })], "only the other channel's message");
      // Subscribing again follows the new channel.
      await back.subscribeAsync("alerts/messages", { qos: 1 });
      await publish(s, token, "alerts", 1);
      await waitFor(() => again.got.length === 2, 5_000, "a message after subscribing again");
    } finally {
      await back?.endAsync(true).catch(() => {});
      await s.close();
    }
  },
);

integration(
  "a kept session coming back gets its CONNACK first, then what was queued and what came while it was restored, in order",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0", MQTT_MAX_QUEUED: "2" });
    let back: mqtt.MqttClient | null = null;
    try {
      for (const name of ["a", "b"]) {
        await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name }) });
      }
      const token = await s.device("w1");
      await leaveAway(s, "w1", token, "w1-away", { a: 1, b: 1 });
      await publish(s, token, "a", 3); // two queued, one dropped: the queue is full
      const dropped = async () => /^sluice_mqtt_queue_dropped_total 1$/m.test(await (await s.admin("/metrics")).text());
      await waitFor(dropped, 10_000, "one drop counted");
      // Restoring its subscription to b takes a while (a slow channel read): a's is live meanwhile.
      const b = slowChannel(s, "b");
      const again = comeBack(s, "w1", token, "w1-away");
      back = again.client;
      let closed = false;
      back.on("close", () => closed = true);
      await new Promise((r) => setTimeout(r, 150));
      await publish(s, token, "a", 1); // while a is live and b is being restored: before the CONNACK
      // A message written before the CONNACK left mqtt.js waiting for the CONNACK for ever.
      assert.equal(await inTime(again.connack, 10_000, "CONNACK"), true);
      b.slow = false;
      await waitFor(() => again.got.length >= 3, 5_000, "the two queued messages and the one sent meanwhile");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(again.got, [1, 2, 1].map((n) => JSON.stringify({ n })));
      assert.equal(closed, false, "still connected");
      assert.ok(await dropped(), "no more drops");
    } finally {
      await back?.endAsync(true).catch(() => {});
      await s.close();
    }
  },
);

integration("a kept session's QoS 0 subscription gets a message published while the session is restored", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  let back: mqtt.MqttClient | null = null;
  try {
    for (const name of ["a", "b"]) await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name }) });
    const token = await s.device("q0");
    await leaveAway(s, "q0", token, "q0-away", { a: 0, b: 1 });
    const b = slowChannel(s, "b");
    const again = comeBack(s, "q0", token, "q0-away");
    back = again.client;
    await new Promise((r) => setTimeout(r, 150));
    await publish(s, token, "a", 1); // before the CONNACK
    assert.equal(await inTime(again.connack, 10_000, "CONNACK"), true);
    b.slow = false;
    await waitFor(() => again.got.length >= 1, 5_000, "the message held until the CONNACK");
    assert.deepEqual(again.got, [JSON.stringify({ n: 1 })]);
  } finally {
    await back?.endAsync(true).catch(() => {});
    await s.close();
  }
});

integration(
  "a channel deleted and created again while a kept session is restored is not followed by it",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    let back: mqtt.MqttClient | null = null;
    try {
      const create = (name: string) => s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name }) });
      for (const name of ["a", "b"]) await (await create(name)).body?.cancel();
      const token = await s.device("rd");
      await leaveAway(s, "rd", token, "rd-away", { a: 1, b: 1 });
      const b = slowChannel(s, "b");
      const again = comeBack(s, "rd", token, "rd-away");
      back = again.client;
      await new Promise((r) => setTimeout(r, 150)); // a restored (checked), b still being checked
      const deleted = await s.admin("/admin/channels/a", { method: "DELETE" });
      assert.ok(deleted.status < 300);
      await deleted.body?.cancel();
      await (await create("a")).body?.cancel();
      assert.equal(await inTime(again.connack, 10_000, "CONNACK"), true);
      b.slow = false;
      await new Promise((r) => setTimeout(r, 300));
      for (const on of ["a", "b"]) await (await post(`${s.url}/channels/${on}/messages`, token, { on })).body?.cancel();
      await waitFor(() => again.got.length >= 1, 5_000, "b's message");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(again.got, [JSON.stringify({ on: "b" })], "the channel a created again is not followed");
    } finally {
      await back?.endAsync(true).catch(() => {});
      await s.close();
    }
  },
);

integration(
  "a kept session coming back gets its queue and what is published meanwhile in the order published",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    let back: mqtt.MqttClient | null = null;
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "ordered" }) });
      const token = await s.device("o1");
      await leaveAway(s, "o1", token, "o1-away", "ordered");
      const send = async (n: number) => {
        const res = await post(`${s.url}/channels/ordered/messages`, token, { n });
        assert.equal(res.status, 202);
        await res.body?.cancel();
      };
      for (let n = 1; n <= 300; n++) await send(n);
      await new Promise((r) => setTimeout(r, 300)); // re-published into its queue
      const again = comeBack(s, "o1", token, "o1-away");
      back = again.client;
      assert.equal(await inTime(again.connack, 10_000, "CONNACK"), true);
      // Published while its queue of 300 is being sent.
      await Promise.all(Array.from({ length: 30 }, (_, i) => send(301 + i)));
      await waitFor(() => again.got.length >= 330, 10_000, "all 330");
      const ns = again.got.map((m) => (JSON.parse(m) as { n: number }).n);
      const late = ns.slice(300).sort((a, b) => a - b);
      assert.deepEqual(ns.slice(0, 300), Array.from({ length: 300 }, (_, i) => i + 1), "the queue first, in order");
      assert.deepEqual(late, Array.from({ length: 30 }, (_, i) => 301 + i));
    } finally {
      await back?.endAsync(true).catch(() => {});
      await s.close();
    }
  },
);
