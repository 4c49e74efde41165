import assert from "node:assert/strict";
import { valueSize } from "../core/kv_size.ts";
import { Committer } from "../store/committer.ts";
import { systemClock } from "../core/clock.ts";
import { claimWriterEpoch } from "../store/writer_epoch.ts";
import { positionalTaskId } from "../core/task_id.ts";
import { keys } from "../store/keys.ts";
import { chunked } from "../store/kv_limits.ts";
import { DEAD_LETTER_BYTES, type DeadLetter, DeadLetters, withinValueLimit } from "./dead_letters.ts";

const letter = (params: unknown, errors: string[]): DeadLetter => ({
  taskId: "dC9j.1",
  stream: "t/c/d",
  consumer: "tasks",
  seq: 1,
  method: "test/fail",
  params,
  device: "d",
  attempts: errors.length,
  errors: errors.map((error, i) => ({ attempt: i + 1, at: i, error })),
  deadAt: 0,
});

Deno.test("a dead letter with the biggest params and long errors drops its oldest errors to fit a KV value", () => {
  const dead = withinValueLimit(letter({ pad: "a".repeat(60 * 1024) }, ["温".repeat(2000), "温".repeat(2000)]));
  assert.ok(valueSize(dead) <= DEAD_LETTER_BYTES, `${valueSize(dead)} bytes`);
  assert.deepEqual(dead.params, { pad: "a".repeat(60 * 1024) }, "the params stay whole: a retry queues them");
  assert.equal(dead.errors.length, 1);
  assert.equal(dead.errors[0]!.attempt, 2, "the latest error is kept");
  assert.ok(dead.errors[0]!.error.endsWith("…"), "and cut where even it does not fit");
});

Deno.test("a dead letter that fits is kept as it is", () => {
  const dead = letter({ n: 1 }, ["a", "b"]);
  assert.equal(withinValueLimit(dead), dead);
});

Deno.test("a page of 1,000 dead letters (the most one page takes) is listed, and the next page follows it", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const ids = Array.from({ length: 1001 }, (_, i) => `dC9j.${String(i + 1).padStart(4, "0")}`);
    for (const group of chunked(ids, 500)) {
      const op = kv.atomic();
      for (const taskId of group) op.set(keys.deadLetter(taskId), { ...letter(null, ["x"]), taskId });
      await op.commit();
    }
    const letters = new DeadLetters(kv, null as unknown as Committer, 60_000);
    const first = await letters.list(1000);
    assert.equal(first.deadLetters.length, 1000);
    assert.equal(first.next, ids[999]);
    const second = await letters.list(1000, first.next!);
    assert.deepEqual(second.deadLetters.map((d) => d.taskId), [ids[1000]]);
    assert.equal(second.next, null);
  } finally {
    kv.close();
  }
});

Deno.test("a bulk retry or discard of big dead letters goes a part at a time, in order, and a discard keeps no params", async () => {
  const dir = await Deno.makeTempDir();
  const kv = await Deno.openKv(`${dir}/test.kv`);
  const committer = new Committer({ kv, mode: "single", clock: systemClock, epoch: await claimWriterEpoch(kv, "t") });
  let inFlight = 0, most = 0;
  const write = committer.write.bind(committer);
  committer.write = (req) => {
    most = Math.max(most, ++inFlight);
    return write(req).finally(() => inFlight--);
  };
  try {
    const big = "x".repeat(40_000);
    const make = async (n: number, stream: string) => {
      for (const group of chunked(Array.from({ length: n }, (_, i) => i + 1), 10)) {
        const op = kv.atomic();
        for (const seq of group) {
          const taskId = positionalTaskId(stream, seq);
          op.set(keys.deadLetter(taskId), { ...letter({ seq, big }, ["x"]), taskId, stream, seq });
        }
        await op.commit();
      }
    };
    const letters = new DeadLetters(kv, committer);
    await make(120, "t/c/a");
    assert.deepEqual(await letters.discardMatching({}, 10_000, 0), { discarded: 120, left: 0, before: 0 });
    assert.ok(most <= 50, `at most a part's letters in the committer at once, not ${most}`);
    const kept = await kv.get<DeadLetter>(keys.discarded(positionalTaskId("t/c/a", 7)));
    assert.deepEqual([kept.value?.params, kept.value?.method], [null, "test/fail"]);
    most = 0;
    await make(120, "t/c/b");
    assert.deepEqual(await letters.retryMatching({}, 10_000, 0), { retried: 120, left: 0, before: 0 });
    assert.ok(most <= 50, `at most a part's letters in the committer at once, not ${most}`);
    await committer.flush();
    const requeued = await Array.fromAsync(kv.list<{ data: { params: { seq: number } } }>({ prefix: ["ev", "t/c/b"] }));
    assert.deepEqual(requeued.map((e) => e.value.data.params.seq), Array.from({ length: 120 }, (_, i) => i + 1));
    // A letter that changes after the scan chose it (retried meanwhile, dead again) is left for another call.
    await make(60, "t/c/c");
    const late = positionalTaskId("t/c/c", 55);
    const getMany = kv.getMany.bind(kv);
    kv.getMany = (async (k: Deno.KvKey[], o?: { consistency?: Deno.KvConsistencyLevel }) => {
      if (k.some((key) => key.at(-1) === late)) {
        await kv.set(keys.deadLetter(late), { ...letter(null, ["again"]), taskId: late });
      }
      return await getMany(k, o);
    }) as Deno.Kv["getMany"];
    assert.deepEqual(await letters.discardMatching({}, 10_000, 0), { discarded: 59, left: 1, before: 0 });
    assert.equal((await kv.get<DeadLetter>(keys.deadLetter(late))).value?.errors[0]?.error, "again");
  } finally {
    await committer.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
});
