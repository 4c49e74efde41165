import assert from "node:assert/strict";
import { runSim, type SimOptions, type Transport } from "./runner.ts";

const TOKENS = { "sim-1": "t1", "sim-2": "t2", "sim-3": "t3", "sim-4": "t4" };

/** Options for a fleet whose tokens are given (no Sluice needed). */
function options(more: Partial<SimOptions> = {}): SimOptions {
  return {
    devices: 4,
    rate: 20,
    duration: 2,
    url: "fake://",
    adminUrl: "http://127.0.0.1:9",
    tokens: TOKENS,
    prefix: "sim",
    seed: 1,
    inflight: 4,
    ...more,
  };
}

/** A transport that records when each device sent, and answers with `answer`. */
function fakeTransport(answer: (device: string, n: number) => Promise<void> = () => Promise.resolve()) {
  const sends = new Map<string, number[]>();
  const transport: Transport = {
    name: "http",
    connect: ({ id }) => {
      const times: number[] = [];
      sends.set(id, times);
      return Promise.resolve(() => (times.push(performance.now()), answer(id, times.length)));
    },
    close: () => Promise.resolve(),
  };
  return { transport, sends };
}

/** A stand-in for Sluice's admin API and `/metrics`, recording the requests. */
function fakeSluice(refusedByRead: number[]) {
  const requests: string[] = [];
  let reads = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const { pathname } = new URL(req.url);
    requests.push(`${req.method} ${pathname}`);
    if (pathname !== "/metrics") return new Response("no", { status: 500 });
    const n = refusedByRead[Math.min(reads++, refusedByRead.length - 1)];
    return new Response(
      `# TYPE sluice_ingest_refused_total counter\n` +
        `sluice_ingest_refused_total{protocol="http",code="rate_limited"} ${n}\n` +
        `sluice_ingest_refused_total{protocol="mqtt",code="rate_limited"} 99\n`,
    );
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, requests, close: () => server.shutdown() };
}

Deno.test("every device sends its share spread over the run, not one device after another", async () => {
  const { transport, sends } = fakeTransport();
  const report = await runSim(options(), transport);
  assert.deepEqual([report.sent, report.acked], [40, 40]);
  for (const [id, times] of sends) {
    const at = times.map((t) => (t - report.startedAt) / 1000);
    assert.equal(at.length, 10, id);
    assert.ok(at[0]! < 0.5, `${id} started sending at ${at[0]} s`);
    assert.ok(at.at(-1)! > 1.5, `${id} stopped sending at ${at.at(-1)} s`);
  }
});

Deno.test("errors are counted by cause, and each new cause is logged once", async () => {
  const refused = `HTTP 429: ${JSON.stringify({ error: { code: "rate_limited", message: "Over 200/s for sim-2" } })}`;
  const { transport } = fakeTransport((id, n) =>
    id === "sim-2"
      ? Promise.reject(new Error(refused))
      : n === 1
      ? Promise.reject(new Error("boom"))
      : Promise.resolve()
  );
  const lines: string[] = [];
  const report = await runSim(options({ rate: 40, duration: 0.5 }), transport, { log: (l) => lines.push(l) });
  assert.deepEqual([report.sent, report.acked, report.errors], [20, 12, 8]);
  assert.deepEqual(report.errorCauses, [["HTTP 429 rate_limited", 5], ["boom", 3]]);
  assert.deepEqual(lines.filter((l) => l.startsWith("New error")).sort(), [
    "New error: HTTP 429 rate_limited",
    "New error: boom",
  ]);
});

Deno.test("given tokens win over an admin token: no device is created or revoked; refusals come from /metrics", async () => {
  const sluice = fakeSluice([5, 8]);
  try {
    const { transport } = fakeTransport();
    const report = await runSim(
      options({ adminUrl: sluice.url, adminToken: "admin-token-0123456789", duration: 0.3 }),
      transport,
    );
    assert.equal(report.acked, report.sent);
    assert.deepEqual(sluice.requests, ["GET /metrics", "GET /metrics"]);
    assert.deepEqual(report.refused, [["rate_limited", 3]]);
  } finally {
    await sluice.close();
  }
});

Deno.test("a transport that cannot reach its server fails before any device is revoked", async () => {
  const sluice = fakeSluice([0]);
  try {
    const { transport } = fakeTransport();
    const unreachable: Transport = { ...transport, check: () => Promise.reject(new Error("Cannot reach mqtt://x")) };
    await assert.rejects(
      runSim(options({ adminUrl: sluice.url, adminToken: "admin-token-0123456789", tokens: undefined }), unreachable),
      /Cannot reach mqtt:\/\/x/,
    );
    assert.deepEqual(sluice.requests, []);
  } finally {
    await sluice.close();
  }
});

Deno.test("missing tokens name the devices, and no admin token means no devices", async () => {
  const { transport } = fakeTransport();
  await assert.rejects(
    runSim(options({ devices: 6 }), transport),
    /has no token for sim-5, sim-6: it needs sim-1 … sim-6/,
  );
  await assert.rejects(runSim(options({ tokens: undefined }), transport), /give --admin-token/);
});

Deno.test("an interrupt stops sending and gives up on acknowledgements after 2 s", async () => {
  const stop = new AbortController();
  let sent = 0;
  let abortedAt = 0;
  // Interrupted at the 30th send (a timer raced the sends on a loaded machine); never acknowledged.
  const { transport } = fakeTransport(() => {
    if (++sent === 30) abortedAt = performance.now(), stop.abort();
    return new Promise(() => {});
  });
  // 10,000 a second: about 100 sends are due each tick, so one that went on past the interrupt would send more.
  const report = await runSim(options({ rate: 10_000, duration: 10, inflight: 100_000 }), transport, {
    signal: stop.signal,
  });
  const gaveUpAfter = performance.now() - abortedAt;
  assert.ok(report.interrupted);
  assert.equal(report.sent, 30);
  assert.ok(gaveUpAfter >= 2000 && gaveUpAfter < 4000, `gave up ${gaveUpAfter} ms after the interrupt`);
  assert.deepEqual(report.errorCauses, [["no acknowledgement before the interrupt", report.sent]]);
  assert.equal(report.refused, null);
});
