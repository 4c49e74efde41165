import type { Sluice } from "./sluice.ts";

/** What a cron tick works with once this instance has started. */
export interface Started {
  readonly sluice: Pick<Sluice, "mode" | "runner" | "log">;
  /** AMQP, when `AMQP_URL` is set: whether it is connected, and deliveries it has taken so far. */
  readonly amqp?: { ready(): boolean; received(): number };
}

export interface CronSweepOptions {
  /** How long a tick waits for an instance still starting (Deploy may start one for the tick). */
  readonly startWaitMs?: number;
  /** AMQP: how long a tick waits for the connection, and keeps the instance busy while deliveries come. */
  readonly connectWaitMs?: number;
  readonly quietMs?: number;
  readonly drainMaxMs?: number;
}

/**
 * One cron tick on Deno Deploy (every minute): waits for this instance to finish starting, resumes
 * the partitions a stopped instance left behind its head, and, with AMQP, stays busy while
 * `iot.ingest` delivers (AMQP wakes no instance by itself, and Deploy stops idle ones), until
 * deliveries pause for `quietMs` or `drainMaxMs` passed. Elsewhere (one process) it does nothing.
 */
export async function cronSweep(started: Promise<Started | null>, options: CronSweepOptions = {}): Promise<void> {
  const { startWaitMs = 30_000, connectWaitMs = 10_000, quietMs = 2_000, drainMaxMs = 45_000 } = options;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const running = await Promise.race([
    started,
    new Promise<null>((r) => timer = setTimeout(() => r(null), startWaitMs)),
  ]);
  clearTimeout(timer); // a tick every minute would otherwise leave a timer behind for startWaitMs
  if (running?.sluice.mode !== "deploy") return;
  const { sluice, amqp } = running;
  const woken = await sluice.runner.sweep();
  if (woken > 0) sluice.log.info(`Cron sweep resumed ${woken} partition(s)`);
  if (!amqp) return;
  const begun = Date.now();
  while (!amqp.ready() && Date.now() - begun < connectWaitMs) await sleep(100);
  if (!amqp.ready()) return;
  const before = amqp.received();
  for (let seen = before;;) {
    await sleep(quietMs);
    const now = amqp.received();
    if (now === seen || Date.now() - begun >= drainMaxMs) break;
    seen = now;
  }
  const taken = amqp.received() - before;
  if (taken > 0) sluice.log.info(`Cron tick: took ${taken} AMQP message(s) from iot.ingest`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
