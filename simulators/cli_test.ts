import assert from "node:assert/strict";
import { exitCode, parseSimArgs, progressLine, summary } from "./cli.ts";
import type { SimReport } from "./runner.ts";

const DEFAULTS = { url: "mqtt://127.0.0.1:1883" };

const REPORT: SimReport = {
  sent: 20,
  acked: 20,
  errors: 0,
  seconds: 2,
  asked: 20,
  rate: 10,
  startedAt: 0,
  latency: { p50: 4, p95: 9, p99: 12, max: 15 },
  errorCauses: [],
  refused: null,
  interrupted: false,
};

Deno.test("counts that must be whole numbers refuse fractions, and every number is written in decimal digits", async () => {
  for (const flag of ["--devices", "--inflight", "--seed"]) {
    await assert.rejects(parseSimArgs([flag, "1.5"], DEFAULTS), new RegExp(`${flag} must be a whole number`));
  }
  await assert.rejects(parseSimArgs(["--devices", ""], DEFAULTS), /--devices must be a whole number ≥ 1, got ""/);
  for (const odd of ["0x3", "1e2", " 5", "+4", "Infinity"]) {
    await assert.rejects(parseSimArgs(["--devices", odd], DEFAULTS), /--devices must be a whole number/, odd);
    await assert.rejects(parseSimArgs(["--rate", odd], DEFAULTS), /--rate must be a number/, odd);
  }
  const options = await parseSimArgs(["--devices", "3", "--seed", "0", "--rate", "2.5"], DEFAULTS);
  assert.deepEqual([options?.devices, options?.seed, options?.rate], [3, 0, 2.5]);
});

Deno.test("a rate and duration that make no message are refused", async () => {
  await assert.rejects(
    parseSimArgs(["--rate", "0.01", "--duration", "10"], DEFAULTS),
    /--rate 0.01 for --duration 10 s makes no message/,
  );
});

Deno.test("a bad tokens file is one line naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = (name: string, text: string) =>
      Deno.writeTextFile(`${dir}/${name}`, text).then(() => `${dir}/${name}`);
    const cases: [string, RegExp][] = [
      [`${dir}/missing.json`, /^Error: --tokens .*missing\.json: no such file$/],
      [await file("text.json", "sim-1=abc"), /^Error: --tokens .*text\.json: not JSON/],
      [await file("list.json", '["abc"]'), /^Error: --tokens .*list\.json: must be a JSON object of device id → token/],
      [await file("numbers.json", '{"sim-1": 5}'), /^Error: --tokens .*numbers\.json: must be a JSON object/],
    ];
    for (const [path, expected] of cases) await assert.rejects(parseSimArgs(["--tokens", path], DEFAULTS), expected);
    const good = await file("good.json", '{"sim-1": "t1"}');
    assert.deepEqual((await parseSimArgs(["--tokens", good], DEFAULTS))?.tokens, { "sim-1": "t1" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("progress gives the rate of the last interval, not the average since the start", () => {
  const line = progressLine({ sent: 1100, acked: 1050, errors: 0, seconds: 10 }, { acked: 1000, seconds: 9 });
  assert.match(line, /\(50 acked\/s\)$/);
});

Deno.test("a summary with nothing acknowledged says so instead of latencies of 0 ms", () => {
  const [line] = summary({
    ...REPORT,
    acked: 0,
    errors: 20,
    rate: 0,
    latency: { p50: 0, p95: 0, p99: 0, max: 0 },
    errorCauses: [["not connected: Connection refused: Not authorized", 20]],
  });
  assert.match(line!, /no acknowledgements$/);
  assert.doesNotMatch(line!, /p50/);
});

Deno.test("a summary lists the top causes of errors and Sluice's refusals, which fail the run", () => {
  const causes = Array.from({ length: 7 }, (_, i): [string, number] => [`cause ${i}`, 10 - i]);
  const report = { ...REPORT, refused: [["rate_limited", 7], ["forbidden", 1]] as const, errorCauses: causes };
  assert.deepEqual(summary(report).slice(1), [
    "errors by cause:",
    "  10 × cause 0",
    "  9 × cause 1",
    "  8 × cause 2",
    "  7 × cause 3",
    "  6 × cause 4",
    "  9 × 2 other cause(s)",
    "Sluice refused 8 message(s) over this protocol during the run (all its clients): rate_limited 7, forbidden 1",
  ]);
  assert.equal(exitCode(report), 1);
  assert.equal(exitCode(REPORT), 0);
  assert.equal(exitCode({ ...report, interrupted: true }), 130);
});

Deno.test("the admin API is looked for at --url's origin for HTTP and WebSocket URLs, else on port 8000", async () => {
  const adminUrl = async (...args: string[]) => (await parseSimArgs(args, DEFAULTS))!.adminUrl;
  assert.equal(await adminUrl("--url", "http://localhost:18731/blog/queues/feed"), "http://localhost:18731");
  assert.equal(await adminUrl("--url", "wss://sluice.example:8443/mqtt"), "https://sluice.example:8443");
  assert.equal(await adminUrl("--url", "ws://127.0.0.1:9000/mqtt"), "http://127.0.0.1:9000");
  assert.equal(await adminUrl(), "http://localhost:8000", "a broker's URL says nothing of Sluice's");
  assert.equal(await adminUrl("--url", "amqp://guest:guest@127.0.0.1:5672"), "http://localhost:8000");
  assert.equal(await adminUrl("--url", "http://a:1/x", "--admin-url", "http://b:2"), "http://b:2", "given wins");
});
