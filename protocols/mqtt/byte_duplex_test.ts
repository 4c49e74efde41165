import assert from "node:assert/strict";
import { Aedes } from "aedes";
import mqttPacket from "mqtt-packet";
import { ByteDuplex } from "./byte_duplex.ts";

Deno.test("read() hands over everything buffered, not just the first chunk", () => {
  const duplex = new ByteDuplex({ write: () => Promise.resolve(), close: () => {} }, 1000);
  duplex.receive(new Uint8Array([0xc0, 0x00])); // two PINGREQs, in three chunks
  duplex.receive(new Uint8Array([0xc0]));
  duplex.receive(new Uint8Array([0x00]));
  assert.deepEqual([...duplex.read()!], [0xc0, 0x00, 0xc0, 0x00]);
  duplex.destroy();
});

Deno.test("aedes does not stall on packets that arrive in pieces while it authenticates a CONNECT", async () => {
  const broker = await Aedes.createBroker({
    authenticate: (_client, _user, _password, done) => setTimeout(() => done(null, true), 50),
  });
  const written: number[] = [];
  const puback = Promise.withResolvers<void>();
  const duplex = new ByteDuplex({
    write: (bytes) => {
      written.push(...bytes);
      // CONNACK (4 bytes) then PUBACK 0x40 0x02 0x00 0x07
      if (written.length >= 8 && written[4] === 0x40) puback.resolve();
      return Promise.resolve();
    },
    close: () => {},
  }, 1000);
  broker.handle(duplex);
  const connect = mqttPacket.generate({
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: 4,
    clean: true,
    clientId: "c",
    keepalive: 0,
  });
  const publish = mqttPacket.generate({
    cmd: "publish",
    topic: "a/b",
    payload: "hi",
    qos: 1,
    messageId: 7,
    dup: false,
    retain: false,
  });
  duplex.receive(connect);
  for (const piece of [publish.subarray(0, 3), publish.subarray(3, 6), publish.subarray(6)]) duplex.receive(piece);
  const timer = setTimeout(() => puback.reject(new Error(`stalled; got ${written}`)), 5000);
  try {
    await puback.promise;
    assert.deepEqual(written.slice(4, 8), [0x40, 0x02, 0x00, 0x07]);
  } finally {
    clearTimeout(timer);
    duplex.destroy();
    await new Promise<void>((r) => broker.close(() => r()));
  }
});

Deno.test("writes to a connection that went away are refused at once, all with one shared error, none sent", async () => {
  const sent: Uint8Array[] = [];
  const duplex = new ByteDuplex({ write: (b) => (sent.push(b), Promise.resolve()), close: () => {} }, 1000);
  duplex.on("error", () => {});
  duplex.destroy(new Error("EPIPE"));
  const errors: unknown[] = [];
  for (let i = 0; i < 100; i++) {
    // As mqtt-packet writes a PUBLISH: several writes, most without a callback.
    assert.equal(duplex.write(new Uint8Array([0x30])), false);
    assert.equal(duplex.write(new Uint8Array([0x02, 0, 0]), (err?: Error | null) => errors.push(err)), false);
  }
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(errors.length, 100, "every callback is called");
  assert.equal(new Set(errors).size, 1, "with one error, not one built for each write");
  assert.match(String(errors[0]), /write after the connection closed/);
  assert.deepEqual(sent, []);
});
