import assert from "node:assert/strict";
import { integration, startTestSluice, waitFor } from "../helpers/sluice.ts";
import {
  brokerUrl,
  closedWithin,
  connect,
  connectDevice,
  csvReading,
  mqttAdapter,
  refusals,
  waitForReadings,
} from "../helpers/mqtt.ts";
import { CONNACK, connectPacket, packet, PUBACK, publishPacket, RawMqtt, str, SUBACK } from "../helpers/mqtt_raw.ts";

/** The CONNACK return code of a refused CONNECT. */
async function refusedCode(url: string, options: Parameters<typeof connect>[1]): Promise<number> {
  try {
    const c = await connect(url, options);
    await c.endAsync();
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
  throw new Error("The CONNECT was accepted");
}

integration("CONNECT with a wrong password, another device's token or no credentials is refused", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    const token = await s.device("auth-1");
    const other = await s.device("auth-2");
    const url = brokerUrl(s);
    assert.equal(await refusedCode(url, { username: "auth-1", password: `${token}x` }), 4, "wrong password");
    assert.equal(await refusedCode(url, { username: "auth-1", password: other }), 4, "another device's token");
    assert.equal(await refusedCode(url, {}), 5, "no credentials without MQTT_ANONYMOUS_CONNECT");
    const ok = await connectDevice(url, "auth-1", token);
    await ok.endAsync();
  } finally {
    await s.close();
  }
});

integration(
  "a revoked device is disconnected within 1 s, cannot connect again, and its token in a topic is refused",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0", MQTT_ANONYMOUS_CONNECT: "true" });
    const anonymous = await connect(brokerUrl(s));
    try {
      const token = await s.device("rev-1");
      const client = await connectDevice(brokerUrl(s), "rev-1", token);
      await client.publishAsync("blog_queuing/invoke", csvReading(1), { qos: 1 });
      const closed = closedWithin(client, 1000);
      const res = await s.admin("/admin/devices/rev-1", { method: "DELETE" });
      assert.ok(res.status < 300, `revoked: ${res.status}`);
      await res.body?.cancel();
      assert.ok((await closed) < 1000, "disconnected within 1 s of the revocation");
      client.end(true);
      assert.equal(await refusedCode(brokerUrl(s), { username: "rev-1", password: token }), 4);

      // A publish carrying the revoked token in its topic is acknowledged, recorded and not processed.
      await anonymous.publishAsync(`${token}/blog_queuing/invoke`, csvReading(2), { qos: 1 });
      const refused = await waitFor(async () => (await refusals(s)).find((r) => r.code === "unauthorized"));
      assert.equal(refused!.device, null);
      assert.ok(!JSON.stringify(await refusals(s)).includes(token), "the token is not in the refused log");
      assert.deepEqual(await waitForReadings(s, "rev-1", 1), [1]);
      assert.equal(mqttAdapter(s).stats.accepted, 1);
    } finally {
      await anonymous.endAsync();
      await s.close();
    }
  },
);

integration("publishing on another device's route or a system channel disconnects the client", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    const a = await s.device("acl-a");
    const b = await s.device("acl-b");
    for (const topic of [`${b}/blog_queuing/invoke`, "_pumps/messages", "not/a/sluice/route"]) {
      const client = await connectDevice(brokerUrl(s), "acl-a", a);
      const closed = closedWithin(client, 5000);
      let acked = false;
      client.publish(topic, csvReading(1), { qos: 1 }, (err) => acked = !err);
      await closed;
      client.end(true);
      assert.equal(acked, false, `${topic.replace(b, "<b's token>")}: no PUBACK`);
    }
    assert.equal(mqttAdapter(s).stats.forbidden, 3);
    assert.equal(mqttAdapter(s).stats.accepted, 0);
    assert.equal((await s.admin("/pumps/acl-b")).status, 404, "nothing was processed for the other device");
  } finally {
    await s.close();
  }
});

integration(
  "an anonymous session publishes with a token in the topic, and is disconnected on a channel closed to anonymous senders",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0", MQTT_ANONYMOUS_CONNECT: "true" });
    try {
      const token = await s.device("anon-1");
      const client = await connect(brokerUrl(s));
      await client.publishAsync(`${token}/blog_queuing/invoke`, csvReading(3), { qos: 1 });
      assert.deepEqual(await waitForReadings(s, "anon-1", 1), [3]);
      const closed = closedWithin(client, 5000);
      client.publish("blog_queuing/invoke", csvReading(4), { qos: 1 });
      await closed;
      client.end(true);
      assert.equal(mqttAdapter(s).stats.forbidden, 1);
    } finally {
      await s.close();
    }
  },
);

integration(
  "a device whose id is another's plus ':…' cannot take over that device's persistent session by its client id",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    try {
      const victimToken = await s.device("site:p1");
      const attackerToken = await s.device("site");
      const victim = await connect(brokerUrl(s), {
        username: "site:p1",
        password: victimToken,
        clientId: "gw",
        clean: false,
      });
      await victim.subscribeAsync("blog_queuing/messages", { qos: 1 });
      let victimClosed = false;
      victim.on("close", () => victimClosed = true);
      const attacker = await connect(brokerUrl(s), {
        username: "site",
        password: attackerToken,
        clientId: "p1:gw",
        clean: false,
      });
      const sessionPresent = (attacker as unknown as { connackPacket?: { sessionPresent?: boolean } }).connackPacket
        ?.sessionPresent;
      await new Promise((r) => setTimeout(r, 300));
      const victimDisconnected = victimClosed;
      await attacker.endAsync();
      await victim.endAsync(true);
      assert.equal(sessionPresent, false, "the attacker was not given the victim's session");
      assert.equal(victimDisconnected, false, "the victim was not disconnected");
    } finally {
      await s.close();
    }
  },
);

integration(
  "an empty client id is refused (identifier rejected) and the connection closed unless the session is clean",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    const opened: RawMqtt[] = [];
    try {
      const token = await s.device("noid-1");
      const open = async (flags: number) => {
        const c = await RawMqtt.open(mqttAdapter(s).port!);
        opened.push(c);
        await c.send(connectPacket({ clientId: "", username: "noid-1", password: token, flags }));
        return c;
      };
      // Clean session off: a session nobody could ever resume [MQTT-3.1.3-8].
      const kept = await open(0xc0);
      assert.equal((await kept.expect(CONNACK))?.body[1], 2, "CONNACK identifier rejected");
      assert.ok(await kept.closedWithin(5000), "then the connection is closed");
      // Clean session on: the server assigns an id, as MQTT allows [MQTT-3.1.3-6].
      const clean = await open(0xc2);
      assert.equal((await clean.expect(CONNACK))?.body[1], 0, "a clean session is accepted");
    } finally {
      for (const c of opened) c.close();
      await s.close();
    }
  },
);

integration(
  "a topic or filter with U+0000 or ill-formed UTF-8, even in the token level, closes the connection unanswered",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    const opened: RawMqtt[] = [];
    try {
      const token = await s.device("utf-1");
      const bytes = (text: string) => [...new TextEncoder().encode(text)];
      const session = async () => {
        const c = await RawMqtt.open(mqttAdapter(s).port!);
        opened.push(c);
        await c.send(connectPacket({ username: "utf-1", password: token }));
        assert.equal((await c.expect(CONNACK))?.body[1], 0);
        return c;
      };
      // The parser reads ill-formed UTF-8 as U+FFFD; either must close the connection [MQTT-1.5.3-1], [MQTT-1.5.3-2].
      const topics = [
        bytes("sl_\u0000secret/blog_queuing/invoke"),
        [...bytes("sl_"), 0xc3, 0x28, ...bytes("secret/blog_queuing/invoke")],
      ];
      for (const topic of topics) {
        const c = await session();
        await c.send(publishPacket(topic, csvReading(1)));
        assert.ok(await c.closedWithin(5000), "a PUBLISH on it closes the connection");
        assert.equal(c.packets.some((p) => p.type === PUBACK), false, "without a PUBACK");
      }
      const filters = [bytes("blog_queuing\u0000/messages"), [...bytes("blog_"), 0xc3, 0x28, ...bytes("/messages")]];
      for (const filter of filters) {
        const c = await session();
        await c.send(packet(0x82, [0, 1, ...str(filter), 1]));
        assert.ok(await c.closedWithin(5000), "a SUBSCRIBE to it closes the connection");
        assert.equal(c.packets.some((p) => p.type === SUBACK), false, "without a SUBACK");
      }
      assert.equal(mqttAdapter(s).stats.accepted, 0);
      assert.ok(!JSON.stringify(await refusals(s)).includes("secret"), "the topic is not quoted in any record");
    } finally {
      for (const c of opened) c.close();
      await s.close();
    }
  },
);
