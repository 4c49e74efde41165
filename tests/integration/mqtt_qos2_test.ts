import assert from "node:assert/strict";
import { topicStream } from "../../core/streams.ts";
import { trueHead } from "../../store/heads.ts";
import { gateIngest, integration, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";
import { mqttAdapter } from "../helpers/mqtt.ts";
import { connectPacket, packet, publishPacket, PUBREC, RawMqtt } from "../helpers/mqtt_raw.ts";

const PUBCOMP = 7;
const MESSAGE_ID = 7;
/** QoS 2 with the DUP flag: the client sends the PUBLISH again. */
const QOS2_DUP = (2 << 1) | 0x08;

/** Opens a raw MQTT connection as a device, with a fixed client id (clean session off unless `clean`). */
type Connect = (device: string, clean?: boolean) => Promise<RawMqtt>;

/** A test on a Sluice with a topic channel `alerts`; the connections it opens are closed after it. */
function alertsTest(name: string, body: (s: TestSluice, connect: Connect) => Promise<void>): void {
  integration(name, async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    const opened: RawMqtt[] = [];
    try {
      await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
      const tokens = new Map<string, string>();
      await body(s, async (device, clean = false) => {
        if (!tokens.has(device)) tokens.set(device, await s.device(device));
        const c = await RawMqtt.open(mqttAdapter(s).port!);
        opened.push(c);
        const flags = 0xc0 | (clean ? 0x02 : 0);
        await c.send(
          connectPacket({ clientId: `${device}-gw`, username: device, password: tokens.get(device), flags }),
        );
        return c;
      });
    } finally {
      for (const c of opened) c.close();
      await s.close();
    }
  });
}

const publish = (payload: string, flags?: number) =>
  publishPacket(
    "alerts/messages",
    payload,
    flags === undefined ? { qos: 2, id: MESSAGE_ID } : { id: MESSAGE_ID, flags },
  );

async function alerts(s: TestSluice): Promise<number> {
  await s.server.sluice.committer.flush();
  return await trueHead(s.server.sluice.kv, topicStream("alerts"));
}

/** Ends the QoS 2 handshake: PUBREL, then PUBCOMP from the broker. */
async function release(c: RawMqtt): Promise<void> {
  await c.send(packet(0x62, [MESSAGE_ID >> 8, MESSAGE_ID & 0xff]));
  assert.ok(await c.expect(PUBCOMP), "PUBCOMP after the PUBREL");
}

const pubrecs = (c: RawMqtt) => c.packets.filter((p) => p.type === PUBREC).length;

alertsTest(
  "a QoS 2 publish resent with DUP after a reconnect, before its PUBREL, is committed once",
  async (s, connect) => {
    const first = await connect("q2-1");
    await first.send(publish("valve open"));
    assert.ok(await first.expect(PUBREC), "PUBREC once committed");
    first.close(); // the PUBREL is never sent on this connection

    const again = await connect("q2-1");
    await again.send(publish("valve open", QOS2_DUP));
    assert.ok(await again.expect(PUBREC), "the resend is acknowledged");
    await release(again);
    // A new message may reuse the packet id once the handshake is over.
    await again.send(publish("valve closed"));
    await waitFor(() => pubrecs(again) === 2, 10_000, "the second PUBREC");
    await release(again);
    assert.equal(await alerts(s), 2, "the resend is not a second message");
  },
);

alertsTest("a QoS 2 publish resent while its first commit is still in flight is committed once", async (s, connect) => {
  const gate = gateIngest(s);
  const first = await connect("q2-2");
  await first.send(publish("valve open"));
  await waitFor(() => gate.entered === 1, 10_000, "the first publish to reach ingest");
  first.close(); // the connection drops while its commit is held

  const again = await connect("q2-2");
  await again.send(publish("valve open", QOS2_DUP));
  await new Promise((r) => setTimeout(r, 300));
  gate.open();
  assert.ok(await again.expect(PUBREC), "the resend is acknowledged once the first commit is done");
  await release(again);
  assert.equal(await alerts(s), 1, "the resend is not a second message");
});

alertsTest("a QoS 2 publish and its resend in one TCP read are committed once", async (s, connect) => {
  const c = await connect("q2-3");
  const gate = gateIngest(s);
  await c.send([...publish("valve open"), ...publish("valve open", QOS2_DUP)]);
  await waitFor(() => gate.entered === 1, 10_000, "the first to reach ingest");
  gate.open();
  await waitFor(() => pubrecs(c) === 2, 10_000, "both acknowledged");
  await release(c);
  assert.equal(gate.entered, 1, "the resend waited for the first's commit");
  assert.equal(await alerts(s), 1);
});

alertsTest(
  "after a clean-session reconnect, a new QoS 2 message that reuses a packet id is committed",
  async (s, connect) => {
    const gate = gateIngest(s);
    const first = await connect("q2-4", true);
    await first.send(publish("old"));
    await waitFor(() => gate.entered === 1, 10_000, "the first to reach ingest");
    first.close(); // dropped while its commit is held; a clean session starts its packet ids afresh
    const again = await connect("q2-4", true);
    await again.send(publish("new"));
    await waitFor(() => gate.entered === 2, 10_000, "the new message to reach ingest");
    gate.open();
    assert.ok(await again.expect(PUBREC), "the new message is acknowledged");
    await release(again);
    assert.equal(await alerts(s), 2, "both messages are kept");
  },
);
