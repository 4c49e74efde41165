import assert from "node:assert/strict";
import { pumpDecider, type PumpState } from "../actors/pump/decider.ts";
import type { PumpCommand, PumpEvent } from "../actors/pump/events.ts";
import {
  ActorRuntime,
  type ActorStorage,
  type RuntimeOptions,
  type Snapshot,
  TrimmedHistoryError,
} from "../actors/runtime.ts";
import type { Clock } from "../core/clock.ts";
import { PUMP_STREAM_PREFIX, pumpStream } from "../core/streams.ts";
import { keys } from "../store/keys.ts";
import { readEvents } from "../store/kv_event_store.ts";
import { HistoryTrimmer, TRIM_BATCH, type TrimmerOptions } from "./history_trimmer.ts";

const HOUR = 3_600_000;
const NOW = Date.parse("2026-11-27T12:00:00Z");
const clock: Clock = { now: () => NOW };

/** A pump log of `n` readings recorded a minute apart, the last one a minute before NOW. */
async function pumpLog(kv: Deno.Kv, pump: string, n: number): Promise<void> {
  for (let first = 1; first <= n; first += 500) {
    const op = kv.atomic();
    for (let seq = first; seq < first + 500 && seq <= n; seq++) {
      const at = NOW - (n - seq + 1) * 60_000;
      const reading = {
        temperature: 10 + (seq % 17),
        pressure: 1 + (seq % 5) / 10,
        lat: 45.5,
        lon: -73.5,
        time: new Date(at - 1000).toISOString(),
      };
      op.set(keys.event(pumpStream(pump), seq), {
        type: "ReadingRecorded",
        data: { reading, receivedAt: new Date(at - 500).toISOString() },
        at,
      });
    }
    await op.commit();
  }
  await kv.set(keys.head(pumpStream(pump)), n);
}

/** A runtime over the KV's logs and bases, its snapshots in memory (none unless a test gives some). */
function runtimeOver(
  kv: Deno.Kv,
  snapshots = new Map<string, Snapshot<PumpState>>(),
  wrap = (s: ActorStorage<PumpState>) => s,
  more: Partial<Pick<RuntimeOptions<PumpState, PumpCommand, PumpEvent>, "decider" | "verifyHead">> = {},
) {
  const storage: ActorStorage<PumpState> = {
    read: (stream, from, limit) => readEvents(kv, stream, from, limit),
    loadSnapshot: (stream) => Promise.resolve(snapshots.get(stream) ?? null),
    saveSnapshot: () => Promise.resolve(),
    loadBase: async (stream) => (await kv.get<Snapshot<PumpState>>(keys.base(stream))).value,
  };
  return new ActorRuntime<PumpState, PumpCommand, PumpEvent>({
    decider: pumpDecider,
    streamOf: pumpStream,
    storage: wrap(storage),
    clock,
    ...more,
  });
}

function trimmerOver(
  kv: Deno.Kv,
  retentionMs: number,
  more: Partial<Pick<TrimmerOptions<PumpState>, "log" | "progressMs" | "decider">> = {},
) {
  return new HistoryTrimmer<PumpState>({
    decider: pumpDecider,
    ...more,
    kv,
    clock,
    retentionMs,
    prefix: PUMP_STREAM_PREFIX,
    idOf: (stream) => stream.slice(PUMP_STREAM_PREFIX.length),
  });
}

async function seqsOf(kv: Deno.Kv, pump: string): Promise<number[]> {
  return (await readEvents(kv, pumpStream(pump), 1, 10_000)).map((e) => e.seq);
}

Deno.test("trimming drops the events recorded before the retention and the pump's state still counts them all", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "p1", 600); // 10 h of readings, a minute apart
  await pumpLog(kv, "p2", 30); // the last half hour only
  const whole = await runtimeOver(kv).state("p1");
  const atVersion500 = await runtimeOver(kv).stateAt("p1", { version: 500 });

  const report = await trimmerOver(kv, 2 * HOUR).sweep();

  // Readings 1–480 were recorded over 2 h ago (the 480th exactly 2 h 1 min ago).
  assert.deepEqual(report, { streams: 1, events: 480, scanned: 2 });
  const kept = await seqsOf(kv, "p1");
  assert.equal(kept[0], 481);
  assert.equal(kept.length, 120);
  assert.equal((await seqsOf(kv, "p2")).length, 30);
  assert.equal((await kv.get<Snapshot<PumpState>>(keys.base(pumpStream("p1")))).value?.version, 480);
  assert.deepEqual(await runtimeOver(kv).state("p1"), whole);
  assert.equal(whole.readings, 600);
  assert.deepEqual(await runtimeOver(kv).stateAt("p1", { version: 500 }), atVersion500);
  // A second sweep finds nothing more to trim.
  assert.deepEqual(await trimmerOver(kv, 2 * HOUR).sweep(), { streams: 0, events: 0, scanned: 2 });
});

Deno.test("a pump whose every reading is past the retention keeps its newest one", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "old", TRIM_BATCH * 2 + 10);
  const whole = await runtimeOver(kv).state("old");
  await trimmerOver(kv, 1).sweep();
  assert.deepEqual(await seqsOf(kv, "old"), [TRIM_BATCH * 2 + 10]);
  assert.deepEqual(await runtimeOver(kv).state("old"), whole);
});

Deno.test("time travel before a trimmed history's start is refused; from its base on, it is as before", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "p", 300);
  const before = await runtimeOver(kv).stateAt("p", { version: 240 });
  const byTime = await runtimeOver(kv).stateAt("p", { time: NOW - 30 * 60_000 });
  await trimmerOver(kv, HOUR).sweep(); // keeps 241–300
  const runtime = runtimeOver(kv);
  assert.deepEqual(await runtime.stateAt("p", { version: 240 }), before);
  assert.deepEqual(await runtime.stateAt("p", { time: NOW - 30 * 60_000 }), byTime);
  await assert.rejects(runtime.stateAt("p", { version: 239 }), TrimmedHistoryError);
  await assert.rejects(runtime.stateAt("p", { time: NOW - 2 * HOUR }), TrimmedHistoryError);
  // A snapshot older than the base (its following events trimmed) is not used as a start.
  const stale = new Map([[pumpStream("p"), { version: 100, at: NOW - 200 * 60_000, state: before }]]);
  assert.deepEqual(await runtimeOver(kv, stale).stateAt("p", { version: 240 }), before);
  await assert.rejects(runtimeOver(kv, stale).stateAt("p", { version: 150 }), TrimmedHistoryError);
});

Deno.test("a pump loaded while its log is trimmed reads the new base rather than fold what is left", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "p", 300);
  const whole = await runtimeOver(kv).state("p");
  const trimmer = trimmerOver(kv, HOUR);
  let trimmed = false;
  // The trim lands after the runtime read the base (none yet) and before it reads the events.
  const runtime = runtimeOver(kv, undefined, (storage) => ({
    ...storage,
    loadBase: async (stream) => {
      const base = await storage.loadBase!(stream);
      if (!trimmed) trimmed = true, await trimmer.sweep();
      return base;
    },
  }));
  assert.deepEqual(await runtime.state("p"), whole);
  assert.ok(trimmed && (await seqsOf(kv, "p"))[0] === 241);
});

Deno.test("a trim whose base changed meanwhile leaves the log to the next sweep", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "p", 300);
  const whole = await runtimeOver(kv).state("p");
  // A second trimmer (another instance) reads the same base first, then the first one commits.
  const slow = trimmerOver(kv, HOUR);
  const get = kv.get.bind(kv);
  let raced = false;
  const racing = new Proxy(kv, {
    get: (target, name) =>
      name === "get"
        ? async (key: Deno.KvKey) => {
          const entry = await get(key);
          if (!raced && key[0] === "snap-base") raced = true, await trimmerOver(kv, 2 * HOUR).sweep();
          return entry;
        }
        : Reflect.get(target, name).bind?.(target) ?? Reflect.get(target, name),
  });
  const report = await trimmerOver(racing, HOUR).sweep();
  assert.ok(raced);
  assert.equal(report.events, 0, "the raced trim committed nothing");
  assert.equal((await seqsOf(kv, "p"))[0], 181, "the other trimmer's 2 h cut stands");
  assert.deepEqual(await runtimeOver(kv).state("p"), whole);
  assert.equal((await slow.sweep()).events, 60, "the next sweep trims on from the new base");
  assert.deepEqual(await runtimeOver(kv).state("p"), whole);
});

Deno.test("a long sweep says how far it is as it goes", async () => {
  using kv = await Deno.openKv(":memory:");
  for (const pump of ["a", "b", "c"]) await pumpLog(kv, pump, 10);
  const lines: string[] = [];
  await trimmerOver(kv, 1, { log: (line) => lines.push(line), progressMs: 0 }).sweep();
  assert.deepEqual(lines, [
    "Trimming old events: 9 so far, from 1 of the 1 log(s) looked at",
    "Trimming old events: 18 so far, from 2 of the 2 log(s) looked at",
    "Trimming old events: 27 so far, from 3 of the 3 log(s) looked at",
  ]);
});

/** The cutoff that trims a log of `n` (as `pumpLog` writes it) up to seq `k`. */
const cutoffAfter = (n: number, k: number) => NOW - (n - k) * 60_000;

Deno.test("a load or time travel that several trims overtake reads on until the base stops moving", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "p", 1000);
  const whole = await runtimeOver(kv).state("p");
  const at900 = await runtimeOver(kv).stateAt("p", { version: 900 });
  const trimmer = trimmerOver(kv, HOUR);
  const overtaken = (cuts: number[]) =>
    runtimeOver(kv, undefined, (storage) => ({
      ...storage,
      // After each of the first reads of the base, a trim of the next 250 events lands.
      loadBase: async (stream) => {
        const base = await storage.loadBase!(stream);
        const k = cuts.shift();
        if (k) await trimmer.trim(stream, cutoffAfter(1000, k));
        return base;
      },
    }));
  assert.deepEqual(await overtaken([250, 500, 750]).state("p"), whole);
  assert.equal((await seqsOf(kv, "p"))[0], 751);
  assert.deepEqual(await overtaken([800, 850, 875]).stateAt("p", { version: 900 }), at900);
  assert.equal((await seqsOf(kv, "p"))[0], 876);
});

Deno.test("a pump loads from its base when its snapshot is older than the trimmed start", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "p", 300);
  const whole = await runtimeOver(kv).state("p");
  const at100 = await runtimeOver(kv).stateAt("p", { version: 100 });
  await trimmerOver(kv, HOUR).sweep(); // base at 240
  const snapshots = new Map([[pumpStream("p"), { version: 100, at: NOW - 200 * 60_000, state: at100 }]]);
  assert.deepEqual(await runtimeOver(kv, snapshots).state("p"), whole);
});

Deno.test("a base saved in a state shape the decider cannot read fails the load rather than lose its events", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "p", 300);
  await trimmerOver(kv, HOUR).sweep();
  const reshaped = runtimeOver(kv, undefined, undefined, {
    decider: { ...pumpDecider, stateShape: (pumpDecider.stateShape ?? 1) + 1, upcast: () => null },
  });
  await assert.rejects(reshaped.state("p"), /p\/p was trimmed up to version 240, saved in state shape \d+/);
  await assert.rejects(reshaped.stateAt("p", { version: 280 }), /cannot read/);
});

Deno.test("a log the sweep cannot trim is said and skipped; the others are trimmed", async () => {
  using kv = await Deno.openKv(":memory:");
  for (const pump of ["a", "bad", "c"]) await pumpLog(kv, pump, 10);
  const lines: string[] = [];
  const report = await trimmerOver(kv, 1, {
    decider: {
      ...pumpDecider,
      evolve: (state, event) => {
        if (state.id === "bad") throw new TypeError("Value too large (max 65536 bytes)");
        return pumpDecider.evolve(state, event);
      },
    },
    log: (line) => lines.push(line),
  }).sweep();
  assert.deepEqual(report, { streams: 2, events: 18, scanned: 3 });
  assert.deepEqual(lines, ["Cannot trim p/bad: Value too large (max 65536 bytes)"]);
  assert.equal((await seqsOf(kv, "bad")).length, 10);
});

Deno.test("an actor caught up from the log (several writers) reloads when the events it missed were trimmed", async () => {
  using kv = await Deno.openKv(":memory:");
  await pumpLog(kv, "p", 10);
  const runtime = runtimeOver(kv, undefined, undefined, {
    verifyHead: async (id) => (await kv.get<number>(keys.head(pumpStream(id)))).value ?? 0,
  });
  assert.equal((await runtime.state("p")).readings, 10);
  await pumpLog(kv, "p", 400); // another instance appended 390 more (the same first 10 rewritten alike)
  const whole = await runtimeOver(kv).state("p");
  await trimmerOver(kv, HOUR).sweep(); // and trimmed up to 340, past what this one holds
  assert.deepEqual(await runtime.state("p"), whole);
});
