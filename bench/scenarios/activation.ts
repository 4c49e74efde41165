import { pumpDecider, type PumpState } from "../../actors/pump/decider.ts";
import type { PumpCommand, PumpEvent } from "../../actors/pump/events.ts";
import { ActorRuntime } from "../../actors/runtime.ts";
import { systemClock } from "../../core/clock.ts";
import { pumpStream } from "../../core/streams.ts";
import { Committer } from "../../store/committer.ts";
import { keys } from "../../store/keys.ts";
import { KvActorStorage } from "../../store/kv_actor_storage.ts";
import { claimWriterEpoch } from "../../store/writer_epoch.ts";
import type { ScenarioResult } from "../result.ts";

const EVENTS = 10_000;

/** Cold activation of a pump with 10,000 events: replay from the start, and from a snapshot. */
export async function activation(): Promise<ScenarioResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-bench-act-" });
  const kv = await Deno.openKv(`${dir}/act.kv`);
  const committer = new Committer({
    kv,
    mode: "single",
    clock: systemClock,
    epoch: await claimWriterEpoch(kv, "bench"),
  });
  try {
    const stream = pumpStream("act");
    for (let i = 0; i < EVENTS; i += 500) {
      await committer.write({
        appends: Array.from({ length: 500 }, (_, k) => ({
          stream,
          event: {
            type: "ReadingRecorded",
            data: {
              reading: {
                temperature: 20 + ((i + k) % 10),
                pressure: 1.2,
                coordinates: { lat: 45.5, lon: -73.6 },
                time: new Date(1_790_000_000_000 + (i + k) * 1000).toISOString(),
              },
              receivedAt: 1_790_000_000_000 + (i + k) * 1000,
            },
          },
        })),
      });
    }
    const storage = new KvActorStorage<PumpState>(kv, committer);
    const runtime = () =>
      new ActorRuntime<PumpState, PumpCommand, PumpEvent>({
        decider: pumpDecider,
        streamOf: pumpStream,
        storage,
        clock: systemClock,
        snapshotEvery: Number.MAX_SAFE_INTEGER, // measuring: no snapshot written while loading
      });
    const time = async () => {
      const samples: number[] = [];
      for (let run = 0; run < 7; run++) {
        const t0 = performance.now();
        const state = await runtime().state("act");
        samples.push(performance.now() - t0);
        if (state.version !== EVENTS) throw new Error(`replayed to ${state.version}`);
      }
      samples.sort((a, b) => a - b);
      return Math.round(samples[3]! * 100) / 100;
    };
    await kv.delete(keys.snapshot(stream));
    const replay = await time();
    const full = await runtime().state("act");
    await storage.saveSnapshot(stream, {
      version: full.version,
      at: Date.now(),
      state: full,
      shape: pumpDecider.stateShape,
    });
    const snapshot = await time();
    return [
      {
        scenario: "Pump activation, 10,000 events, cold, no snapshot",
        rate: Math.round(1000 / replay),
        unit: "activations/s",
        notes: `median ${replay} ms (replay of 10,000 events)`,
      },
      {
        scenario: "Pump activation, 10,000 events, cold, with snapshot",
        rate: Math.round(1000 / snapshot),
        unit: "activations/s",
        target: "< 5 ms",
        met: snapshot < 5,
        notes: `median ${snapshot} ms`,
      },
    ];
  } finally {
    await committer.close();
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}
