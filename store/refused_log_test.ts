import assert from "node:assert/strict";
import { Committer } from "./committer.ts";
import { RefusedLog } from "./refused_log.ts";
import { claimWriterEpoch } from "./writer_epoch.ts";

Deno.test("the refused log keeps one record per device per reason a second and counts the rest", async () => {
  const kv = await Deno.openKv(":memory:");
  let now = 1_000_000;
  const clock = { now: () => now };
  const committer = new Committer({ kv, mode: "single", clock, epoch: await claimWriterEpoch(kv, "t") });
  try {
    const log = new RefusedLog(kv, committer, clock);
    const refuse = (reason: string, device = "d1") =>
      log.record({ protocol: "mqtt", device, code: "not_found", reason, payload: "{}" });
    refuse('Channel "a" does not exist');
    refuse('Unknown script "no/such"'); // another reason with the same code: recorded
    refuse('Channel "b" does not exist'); // the same reason, another name: only counted
    refuse('Channel "c" does not exist', "d2"); // another device: recorded
    refuse("Payload is not valid JSON: Unexpected token 'x', at position 3"); // recorded
    refuse("Payload is not valid JSON: Unexpected token 'y', at position 17"); // the same reason: only counted
    now += 1000;
    refuse('Channel "d" does not exist'); // a second later: recorded, with the one it counted
    await committer.flush();
    const records = (await log.list()).refused.reverse();
    assert.deepEqual(records.map((r) => [r.device, r.reason, r.suppressed]), [
      ["d1", 'Channel "a" does not exist', 0],
      ["d1", 'Unknown script "no/such"', 0],
      ["d2", 'Channel "c" does not exist', 0],
      ["d1", "Payload is not valid JSON: Unexpected token 'x', at position 3", 0],
      ["d1", 'Channel "d" does not exist', 1],
    ]);
    assert.equal(log.counts.get("mqtt:not_found"), 7);
    // Pages of two, newest first, each going on where the last ended.
    const pages: string[][] = [];
    let after: string | undefined;
    do {
      const page = await log.list(2, after);
      pages.push(page.refused.map((r) => r.reason.slice(0, 14)));
      after = page.next ?? undefined;
    } while (after);
    assert.deepEqual(pages.flat(), records.map((r) => r.reason.slice(0, 14)).reverse());
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    await assert.rejects(log.list(2, "garbage"), /Invalid after/);
    assert.deepEqual((await log.list(2, "")).refused, (await log.list(2)).refused, "an empty after: the first page");
  } finally {
    await committer.close();
    kv.close();
  }
});

Deno.test("a refused payload's preview hides token-shaped text, as text or as bytes", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { now: () => 1_000_000 };
  const committer = new Committer({ kv, mode: "single", clock, epoch: await claimWriterEpoch(kv, "t") });
  try {
    const log = new RefusedLog(kv, committer, clock);
    const token = "sl_" + "A1b2C3d4E5f6G7h8I9j0kLmN";
    log.record({
      protocol: "http",
      device: "d1",
      code: "malformed_json",
      reason: "a",
      payload: `{"token":"${token}",`,
    });
    const bytes = new TextEncoder().encode(`{"auth": "${token}"`);
    log.record({ protocol: "mqtt", device: "d2", code: "malformed_json", reason: "b", payload: bytes });
    await committer.flush();
    const previews = (await log.list()).refused.map((r) => r.preview).sort();
    assert.deepEqual(previews, ['{"auth": "sl_…"', '{"token":"sl_…",']);
  } finally {
    await committer.close();
    kv.close();
  }
});

Deno.test("a refused payload's preview hides a token the 256-character cut falls in", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { now: () => 1_000_000 };
  const committer = new Committer({ kv, mode: "single", clock, epoch: await claimWriterEpoch(kv, "t") });
  try {
    const log = new RefusedLog(kv, committer, clock);
    const token = "sl_" + "A1b2C3d4E5f6G7h8I9j0kLmNoPqRsTuVwXyZ0123456";
    const payload = `{"pad": "${"x".repeat(218)}", "token": "${token}"}`;
    log.record({ protocol: "http", device: "d1", code: "malformed_json", reason: "a", payload });
    log.record({
      protocol: "mqtt",
      device: "d2",
      code: "malformed_json",
      reason: "b",
      payload: new TextEncoder().encode(payload),
    });
    await committer.flush();
    for (const { preview } of (await log.list()).refused) {
      assert.ok(!preview.includes("A1b2C3"), `part of the token shown: ${preview.slice(230)}`);
      assert.ok(preview.length <= 256);
    }
  } finally {
    await committer.close();
    kv.close();
  }
});

Deno.test("records of one millisecond are listed newest first, the tenth before the ninth", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = { now: () => 2_000_000 };
  const committer = new Committer({ kv, mode: "single", clock, epoch: await claimWriterEpoch(kv, "t") });
  try {
    const log = new RefusedLog(kv, committer, clock);
    for (let n = 1; n <= 12; n++) {
      log.record({ protocol: "mqtt", device: `d${n}`, code: "not_found", reason: "No such channel", payload: "{}" });
    }
    await committer.flush();
    const devices = (await log.list()).refused.map((r) => r.device);
    assert.deepEqual(devices, Array.from({ length: 12 }, (_, i) => `d${12 - i}`));
  } finally {
    await committer.close();
    kv.close();
  }
});
