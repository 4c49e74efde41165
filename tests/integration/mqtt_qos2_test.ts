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

/** A connection as `device` keeping its session (clean session off, or on), with a fixed client id. */
async function persistentSession(s: TestSluice, device: string, token: string, clean = false): Promise<RawMqtt> {
  const c = await RawMqtt.open(mqttAdapter(s).port!);
  const flags = 0xc0 | (clean ? 0x02 : 0);
  await c.send(connectPacket({ clientId: `${device}-gw`, username: device, password: token, flags }));
  return c;
}

async function topicMessages(s: TestSluice, channel: string): Promise<number> {
  await s.server.sluice.committer.flush();
  return await trueHead(s.server.sluice.kv, topicStream(channel));
}

/** Ends the QoS 2 handshake: PUBREL, then PUBCOMP from the broker. */
async function release(c: RawMqtt): Promise<void> {
  await c.send(packet(0x62, [MESSAGE_ID >> 8, MESSAGE_ID & 0xff]));
  assert.ok(await c.expect(PUBCOMP), "PUBCOMP after the PUBREL");
}

integration("a QoS 2 publish resent with DUP after a reconnect, before its PUBREL, is committed once", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
    const token = await s.device("q2-1");
    const first = await persistentSession(s, "q2-1", token);
    await first.send(publishPacket("alerts/messages", "valve open", { qos: 2, id: MESSAGE_ID }));
    assert.ok(await first.expect(PUBREC), "PUBREC once committed");
    first.close(); // the PUBREL is never sent on this connection

    const again = await persistentSession(s, "q2-1", token);
    try {
      await again.send(publishPacket("alerts/messages", "valve open", { id: MESSAGE_ID, flags: QOS2_DUP }));
      assert.ok(await again.expect(PUBREC), "the resend is acknowledged");
      await release(again);
      // A new message may reuse the packet id once the handshake is over.
      await again.send(publishPacket("alerts/messages", "valve closed", { qos: 2, id: MESSAGE_ID }));
      await waitFor(() => again.packets.filter((p) => p.type === PUBREC).length === 2, 10_000, "the second PUBREC");
      await release(again);
      assert.equal(await topicMessages(s, "alerts"), 2, "the resend is not a second message");
    } finally {
      again.close();
    }
  } finally {
    await s.close();
  }
});

integration("a QoS 2 publish resent while its first commit is still in flight is committed once", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
    const token = await s.device("q2-2");
    const gate = gateIngest(s);
    const first = await persistentSession(s, "q2-2", token);
    await first.send(publishPacket("alerts/messages", "valve open", { qos: 2, id: MESSAGE_ID }));
    await waitFor(() => gate.entered === 1, 10_000, "the first publish to reach ingest");
    first.close(); // the connection drops while its commit is held

    const again = await persistentSession(s, "q2-2", token);
    try {
      await again.send(publishPacket("alerts/messages", "valve open", { id: MESSAGE_ID, flags: QOS2_DUP }));
      await new Promise((r) => setTimeout(r, 300));
      gate.open();
      assert.ok(await again.expect(PUBREC), "the resend is acknowledged once the first commit is done");
      await release(again);
      assert.equal(await topicMessages(s, "alerts"), 1, "the resend is not a second message");
    } finally {
      again.close();
    }
  } finally {
    await s.close();
  }
});

integration("a QoS 2 publish and its resend in one TCP read are committed once", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
    const c = await persistentSession(s, "q2-3", await s.device("q2-3"));
    try {
      const gate = gateIngest(s);
      const first = publishPacket("alerts/messages", "valve open", { qos: 2, id: MESSAGE_ID });
      const resend = publishPacket("alerts/messages", "valve open", { id: MESSAGE_ID, flags: QOS2_DUP });
      await c.send([...first, ...resend]);
      await waitFor(() => gate.entered === 1, 10_000, "the first to reach ingest");
      gate.open();
      await waitFor(() => c.packets.filter((p) => p.type === PUBREC).length === 2, 10_000, "both acknowledged");
      await release(c);
      assert.equal(gate.entered, 1, "the resend waited for the first's commit");
      assert.equal(await topicMessages(s, "alerts"), 1);
    } finally {
      c.close();
    }
  } finally {
    await s.close();
  }
});

integration("after a clean-session reconnect, a new QoS 2 message that reuses a packet id is committed", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    await s.admin("/admin/channels", { method: "POST", body: JSON.stringify({ name: "alerts" }) });
    const token = await s.device("q2-4");
    const gate = gateIngest(s);
    const first = await persistentSession(s, "q2-4", token, true);
    await first.send(publishPacket("alerts/messages", "old", { qos: 2, id: MESSAGE_ID }));
    await waitFor(() => gate.entered === 1, 10_000, "the first to reach ingest");
    first.close(); // dropped while its commit is held; a clean session starts its packet ids afresh
    const again = await persistentSession(s, "q2-4", token, true);
    try {
      await again.send(publishPacket("alerts/messages", "new", { qos: 2, id: MESSAGE_ID }));
      await waitFor(() => gate.entered === 2, 10_000, "the new message to reach ingest");
      gate.open();
      assert.ok(await again.expect(PUBREC), "the new message is acknowledged");
      await release(again);
      assert.equal(await topicMessages(s, "alerts"), 2, "both messages are kept");
    } finally {
      again.close();
    }
  } finally {
    await s.close();
  }
});
