import assert from "node:assert/strict";
import { AuthThrottle } from "../../core/auth_throttle.ts";
import { DeviceStreams } from "../../core/device_streams.ts";
import { silentLogger } from "../../core/log.ts";
import { ByteDuplex, duplexOfConn } from "../../protocols/mqtt/byte_duplex.ts";
import { EmbeddedBroker, type EmbeddedBrokerOptions } from "../../protocols/mqtt/embedded_broker.ts";
import { PublishHandler } from "../../protocols/mqtt/publish_handler.ts";
import { connect } from "../helpers/mqtt.ts";
import { CONNACK, connectPacket, RawMqtt } from "../helpers/mqtt_raw.ts";
import { integration, post, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";

/** The embedded broker with some options of a test's own, on its own TCP port. */
async function brokerOf(s: TestSluice, options: Partial<EmbeddedBrokerOptions> & { throttle?: AuthThrottle }) {
  const sluice = s.server.sluice;
  const broker = await EmbeddedBroker.start({
    handler: new PublishHandler({
      ingest: sluice.ingest,
      devices: sluice.devices,
      refused: sluice.refused,
      clock: sluice.clock,
      maxBodyBytes: sluice.config.MAX_BODY_BYTES,
    }),
    auth: { admin: sluice.admin, devices: sluice.devices, anonymousConnect: false, throttle: options.throttle },
    devices: sluice.devices,
    channels: sluice.channels,
    topics: sluice.topics,
    refused: sluice.refused,
    log: silentLogger,
    ...options,
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) broker.handle(duplexOfConn(conn, 4096));
  })().catch(() => {});
  return {
    url: `mqtt://127.0.0.1:${listener.addr.port}`,
    port: listener.addr.port,
    handle: (conn: ByteDuplex) => broker.handle(conn),
    get connections() {
      return broker.connections;
    },
    close: async () => {
      listener.close();
      await broker.close();
    },
  };
}

/** The CONNACK return code of a CONNECT and how long it took to come. */
async function connack(url: string, username: string, password: string): Promise<{ code: number; ms: number }> {
  const started = performance.now();
  try {
    const c = await connect(url, { username, password, clientId: `t-${crypto.randomUUID().slice(0, 8)}` });
    await c.endAsync();
    return { code: 0, ms: performance.now() - started };
  } catch (err) {
    return { code: (err as { code?: number }).code ?? -1, ms: performance.now() - started };
  }
}

integration("failed MQTT CONNECTs from one address get ever slower refusals, then are refused outright", async () => {
  const s = await startTestSluice();
  const throttle = new AuthThrottle(s.server.sluice.clock, {
    freeFailures: 2,
    blockAfter: 5,
    windowMs: 60_000,
    maxDelayMs: 400,
  });
  const b = await brokerOf(s, { throttle });
  try {
    const token = await s.device("guess-1");
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push(await connack(b.url, "guess-1", `sl_guess${i}`));
    assert.deepEqual(answers.map((a) => a.code), [4, 4, 4, 4, 4], "wrong credentials: bad username or password");
    // The first two are free; then 100, 200, 400 ms before the refusal.
    for (const [i, least] of [[2, 100], [3, 200], [4, 400]] as const) {
      assert.ok(
        answers[i]!.ms >= least - 5,
        `refusal ${i + 1} took ${answers[i]!.ms.toFixed(0)} ms, at least ${least}`,
      );
    }
    assert.equal(throttle.blocked("127.0.0.1"), true);
    const blocked = await connack(b.url, "guess-1", token);
    assert.equal(blocked.code, 5, "past the limit even the right token is refused (not authorized), unchecked");
  } finally {
    await b.close();
    await s.close();
  }
});

integration(
  "the embedded broker closes connections over its cap at once and takes new ones when some end",
  async () => {
    const s = await startTestSluice();
    const b = await brokerOf(s, { maxConnections: 3 });
    try {
      const token = await s.device("cap-1");
      const held = await Promise.all([1, 2, 3].map(() => RawMqtt.open(b.port)));
      // Let the broker see all three before the fourth comes.
      for (const c of held) {
        await c.send(connectPacket({ username: "cap-1", password: token }));
        assert.ok(await c.expect(CONNACK), "the first three are served");
      }
      const over = await RawMqtt.open(b.port);
      assert.ok(await over.closedWithin(5000), "the fourth is closed at once");
      assert.equal(over.packets.length, 0, "without a CONNACK");
      held[0]!.close();
      // Once the broker has seen that close, a new connection is served again.
      let served = false;
      for (let i = 0; i < 200 && !served; i++) {
        const c = await RawMqtt.open(b.port);
        await c.send(connectPacket({ username: "cap-1", password: token }));
        served = (await c.expect(CONNACK, 5000))?.body[1] === 0;
        c.close();
        if (!served) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(served, "a new connection is taken after one ended");
      for (const c of held) c.close();
    } finally {
      await b.close();
      await s.close();
    }
  },
);

integration("failed CONNECTs over MQTT-over-WebSocket count against the HTTP peer's address", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  try {
    await s.device("ws-guess");
    const url = `${s.url.replace("http", "ws")}/mqtt`;
    for (let i = 0; i < 10; i++) assert.equal((await connack(url, "ws-guess", `sl_guess${i}`)).code, 4);
    const eleventh = await connack(url, "ws-guess", "sl_guess10");
    assert.equal(eleventh.code, 4);
    assert.ok(eleventh.ms >= 95, `the 11th failure took ${eleventh.ms.toFixed(0)} ms`);
    // Counted against the peer's address, which HTTP shares: the next wrong HTTP token waits too.
    const started = performance.now();
    const res = await post(`${s.url}/channels/blog_queuing/invoke`, "sl_guess", { method: "test/echo" });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    assert.ok(performance.now() - started >= 195, "the 12th failure, over HTTP, waited for the doubled delay");
  } finally {
    await s.close();
  }
});

integration(
  "a device's MQTT connections count with its WebSocket and SSE streams: past its limit a CONNECT is refused until one ends",
  async () => {
    const s = await startTestSluice();
    const b = await brokerOf(s, { deviceStreams: new DeviceStreams(2) });
    try {
      const token = await s.device("many-1");
      const held = await Promise.all([1, 2].map(() => RawMqtt.open(b.port)));
      for (const c of held) {
        await c.send(connectPacket({ username: "many-1", password: token, clientId: crypto.randomUUID() }));
        assert.equal((await c.expect(CONNACK))?.body[1], 0, "the first two are served");
      }
      const over = await RawMqtt.open(b.port);
      await over.send(connectPacket({ username: "many-1", password: token, clientId: "third" }));
      assert.equal((await over.expect(CONNACK))?.body[1], 3, "the third: server unavailable");
      // Another device is not held back.
      const other = await RawMqtt.open(b.port);
      await other.send(connectPacket({ username: "many-2", password: await s.device("many-2") }));
      assert.equal((await other.expect(CONNACK))?.body[1], 0);
      held[0]!.close();
      let served = false;
      for (let i = 0; i < 200 && !served; i++) {
        const c = await RawMqtt.open(b.port);
        await c.send(connectPacket({ username: "many-1", password: token, clientId: `again-${i}` }));
        served = (await c.expect(CONNACK, 5000))?.body[1] === 0;
        if (!served) c.close(), await new Promise((r) => setTimeout(r, 20));
        else held[0] = c;
      }
      assert.ok(served, "a slot is free again once a connection ended");
      for (const c of [...held, over, other]) c.close();
    } finally {
      await b.close();
      await s.close();
    }
  },
);

integration("a connection closed while its CONNECT is being checked gives its device's slot back", async () => {
  const s = await startTestSluice();
  const sluice = s.server.sluice;
  const token = await s.device("slow-1");
  // A check that takes 200 ms (a KV read under load), and the connection closed meanwhile.
  const devices = new Proxy(sluice.devices, {
    get(target, key) {
      if (key === "known") return () => undefined; // not from the cache: checked against KV
      const value = Reflect.get(target, key);
      if (key !== "authenticateHash") return typeof value === "function" ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        await new Promise((r) => setTimeout(r, 200));
        return await value.apply(target, args);
      };
    },
  });
  const deviceStreams = new DeviceStreams(3);
  const broker = await brokerOf(s, {
    auth: { admin: sluice.admin, devices, anonymousConnect: false },
    deviceStreams,
  });
  try {
    // A WebSocket whose client has not answered the close frame yet: its socket is not released (`gone` waits).
    let release = () => {};
    const gone = new Promise<void>((r) => release = r);
    const duplex = new ByteDuplex({ write: () => Promise.resolve(), close: () => {}, gone }, 4096, "10.0.0.1");
    broker.handle(duplex);
    duplex.receive(new Uint8Array(connectPacket({ username: "slow-1", password: token })));
    await new Promise((r) => setTimeout(r, 50));
    duplex.destroy();
    await new Promise((r) => setTimeout(r, 400)); // the check has answered by now
    assert.equal(deviceStreams.held("slow-1"), 0, "no slot taken for a connection already closed");
    release();
    await waitFor(() => broker.connections === 0, 5_000, "the connection released");
  } finally {
    await broker.close();
    await s.close();
  }
});
