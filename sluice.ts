import { pumpDecider, type PumpState } from "./actors/pump/decider.ts";
import type { PumpCommand, PumpEvent } from "./actors/pump/events.ts";
import { ActorRuntime } from "./actors/runtime.ts";
import { type Config, isDeploy, kvLocation } from "./config.ts";
import { type Clock, systemClock } from "./core/clock.ts";
import { consoleLogger, type Logger } from "./core/log.ts";
import { RESERVED_SEGMENTS, SCRIPT_PATH } from "./core/names.ts";
import { RateLimiter } from "./core/rate_limiter.ts";
import { AuthThrottle } from "./core/auth_throttle.ts";
import { DeviceStreams, MAX_STREAMS_PER_DEVICE } from "./core/device_streams.ts";
import { LogBudget } from "./core/log_budget.ts";
import { PUMP_STREAM_PREFIX, pumpStream, TASK_STREAM_PREFIX } from "./core/streams.ts";
import { DeadLetters } from "./engine/dead_letters.ts";
import { EffectPlanner } from "./engine/effect_planner.ts";
import { HistoryTrimmer } from "./engine/history_trimmer.ts";
import { Ingest } from "./engine/ingest.ts";
import { ChannelAdmin } from "./engine/channel_admin.ts";
import { InlineRunner } from "./engine/inline_runner.ts";
import type { ScriptManifest } from "./engine/manifest.ts";
import { PartitionRunner } from "./engine/partition_runner.ts";
import { PumpViews } from "./engine/pump_views.ts";
import { type Doorbell, TopicHub, watchDoorbell } from "./engine/topic_hub.ts";
import { PumpFeed } from "./engine/pump_feed.ts";
import { createInstruments, type Instruments } from "./engine/instruments.ts";
import { RefusedLog } from "./store/refused_log.ts";
import { createExecutor, type ScriptExecutor } from "./engine/script_pool.ts";
import { manifest as defaultManifest } from "./scripts/manifest.ts";
import { type AdminToken, loadAdminToken } from "./store/admin_token.ts";
import { ChannelRegistry } from "./store/channel_registry.ts";
import { type CommitStats, Committer } from "./store/committer.ts";
import { ReadBatcher } from "./store/read_batcher.ts";
import { DeviceDirectory } from "./store/device_directory.ts";
import { keys } from "./store/keys.ts";
import { deleteKeys } from "./store/kv_limits.ts";
import { KvActorStorage } from "./store/kv_actor_storage.ts";
import { KvQueueWaker } from "./store/kv_queue_waker.ts";
import { claimWriterEpoch } from "./store/writer_epoch.ts";
import { lockKvFile } from "./store/kv_file_lock.ts";
import { checkKvFormat } from "./store/kv_format.ts";
import { DirectWaker } from "./store/direct_waker.ts";
import { DiskRoom } from "./store/disk_room.ts";
import { LeaseManager } from "./store/leases.ts";
import { SeenIds } from "./store/seen_ids.ts";

/** `READING_RETENTION`: the first trim a minute after the start, then one every 10 minutes. */
const TRIM_FIRST_MS = 60_000;
const TRIM_EVERY_MS = 10 * 60_000;

/** What `openSluice` needs beyond the settings; tests swap the manifest, clock and logger. */
export interface SluiceOptions {
  readonly config: Config;
  readonly manifest?: ScriptManifest;
  /** Worker module serving the same manifest (see `engine/worker_entry.ts`). */
  readonly workerUrl?: URL;
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly onCommit?: (stats: CommitStats) => void;
  /** A KV shared by several logical instances in one process (the multi-instance test). */
  readonly kv?: Deno.Kv;
  /**
   * Told when Sluice must stop, having said why (a stopped script's thread that Deno cannot end keeps allocating
   * memory): `main.ts` stops it as a signal does, then exits with 1.
   */
  readonly onFatal?: (reason: string) => void;
  /** Lease TTL of partitions in deploy mode (ms). */
  readonly leaseTtlMs?: number;
  /**
   * Streams' heads and lanes kept in memory (each) before those idle for `afterMs` are forgotten: one figure for both
   * (tests make it small; the defaults: 20,000 heads and 10,000 lanes, idle for 10 minutes).
   */
  readonly idleMemory?: { readonly from: number; readonly afterMs: number };
}

/** The running core: every service the protocol adapters use. */
export interface Sluice {
  readonly config: Config;
  readonly kv: Deno.Kv;
  readonly log: Logger;
  readonly clock: Clock;
  readonly admin: AdminToken;
  readonly devices: DeviceDirectory;
  readonly channels: ChannelRegistry;
  /** Creates, changes and deletes channels. */
  readonly channelAdmin: ChannelAdmin;
  readonly manifest: ScriptManifest;
  readonly ingest: Ingest;
  readonly inline: InlineRunner;
  readonly runner: PartitionRunner;
  readonly pumps: PumpViews;
  readonly deadLetters: DeadLetters;
  /** Topic subscriptions (WebSocket, SSE, MQTT and AMQP re-publish). */
  readonly topics: TopicHub;
  /** Messages refused at the edge (MQTT, AMQP). */
  readonly refused: RefusedLog;
  /** Slows down addresses that keep failing to authenticate (every protocol). */
  readonly authThrottle: AuthThrottle;
  /** The WebSocket sessions, SSE streams and MQTT connections each device holds open. */
  readonly deviceStreams: DeviceStreams;
  readonly executor: ScriptExecutor;
  readonly committer: Committer;
  /** Counters and histograms fed as Sluice works (`GET /metrics`). */
  readonly instruments: Instruments;
  /** Pump actors held in memory. */
  livePumps(): number;
  /** Trims pump histories past `READING_RETENTION` (absent without it). */
  readonly trimmer?: HistoryTrimmer<PumpState>;
  /** `local`: one process owns the KV (single writer, KV queue wake-ups); `deploy`: many instances. */
  readonly mode: "local" | "deploy";
  /** This instance's id (lease owner). */
  readonly instance: string;
  /** Aborted when Sluice stops. */
  readonly signal: AbortSignal;
  /**
   * Stops taking work, lets batches in flight commit, releases leases, closes KV. With
   * `{ abandon: true }` it stops dead instead, keeping its leases, as a crashed instance would.
   */
  /** `graceMs`: how long the script runs in progress may go on (2 s; less when the stop's other waits took long). */
  close(options?: { abandon?: boolean; graceMs?: number }): Promise<void>;
}

/** Checks the manifest: valid paths, none clashing with Sluice's own routes. */
export function checkManifest(manifest: ScriptManifest): void {
  for (const path of Object.keys(manifest)) {
    if (!SCRIPT_PATH.test(path)) throw new Error(`Script path "${path}" in the manifest is not valid`);
    const first = path.split("/")[0]!;
    if ((RESERVED_SEGMENTS as readonly string[]).includes(first)) {
      throw new Error(`Script path "${path}" clashes with Sluice's reserved route /${first}; rename the script`);
    }
  }
}

/** Opens KV and starts the core: ingest, partition actors, scripts, pumps. */
export async function openSluice(options: SluiceOptions): Promise<Sluice> {
  const { config } = options;
  const log = options.log ?? consoleLogger;
  const clock = options.clock ?? systemClock;
  const manifest = options.manifest ?? defaultManifest;
  checkManifest(manifest);
  const mode = isDeploy(config) ? "deploy" : "local";
  const instruments = createInstruments();
  const onCommit = (stats: CommitStats) => {
    instruments.committed(stats);
    options.onCommit?.(stats);
  };
  const { kv, lock } = options.kv
    ? { kv: options.kv, lock: undefined }
    : await openKv(config, (line) => log.warn(line));
  try {
    return await startCore(options, { log, clock, manifest, mode, instruments, onCommit, kv, lock });
  } catch (err) {
    // A start that fails leaves the file as it found it: closed and unlocked.
    if (!options.kv) kv.close();
    lock?.release();
    throw err;
  }
}

interface Opened {
  readonly log: Logger;
  readonly clock: Clock;
  readonly manifest: ScriptManifest;
  readonly mode: "local" | "deploy";
  readonly instruments: Instruments;
  readonly onCommit: (stats: CommitStats) => void;
  readonly kv: Deno.Kv;
  readonly lock?: { release(): void };
}

/** Starts the core on an open KV. */
async function startCore(options: SluiceOptions, opened: Opened): Promise<Sluice> {
  const { config } = options;
  const { log, clock, manifest, mode, instruments, onCommit, kv, lock } = opened;
  const abort = new AbortController();
  const instance = crypto.randomUUID();
  /** Tasks are kept `TASK_RETENTION` when it is set; every other event by its own retention, or for good. */
  const taskRetention = (stream: string) => stream.startsWith(TASK_STREAM_PREFIX) ? config.TASK_RETENTION : undefined;
  // Locally one process owns the KV: one epoch check guards each batch and a KV queue carries the
  // wake-ups. On Deploy several instances append: per-stream head checks, leases, in-process wake-ups.
  // A KV a newer Sluice wrote may be misread here: refused before anything reads or writes it.
  await checkKvFormat(kv);
  const waker = mode === "local" ? new KvQueueWaker(kv) : new DirectWaker();
  // A KV file's disk keeps KV_MIN_FREE_MB free: below it writes are refused before KV runs out of room itself.
  const where = kvLocation(config);
  const room = where.kind === "file" && config.KV_MIN_FREE_MB > 0
    ? new DiskRoom(dirOf(where.path), config.KV_MIN_FREE_MB * 1024 * 1024, clock, (line) => log.warn(line))
    : undefined;
  const shortage = room && (() => room.shortage());
  // Lanes that wait out KV's refusals go on once a write lands (the runner is made below).
  let resumeStalled = () => {};
  const onWritesAgain = () => resumeStalled();
  const committer = mode === "local"
    ? new Committer({
      kv,
      mode: "single",
      clock,
      epoch: await claimWriterEpoch(kv, instance),
      waker,
      onCommit,
      // Tasks and pump readings are acked from the inbox and reach their streams' keys grouped by
      // stream (a second's worth side by side): about half the disk written a message.
      inbox: (stream) => stream.startsWith(TASK_STREAM_PREFIX) || stream.startsWith(PUMP_STREAM_PREFIX),
      retention: taskRetention,
      log: (line) => log.warn(line),
      shortage,
      onWritesAgain,
      idleHeads: options.idleMemory,
    })
    : new Committer({
      kv,
      mode: "multi",
      clock,
      waker,
      onCommit,
      retention: taskRetention,
      log: (line) => log.warn(line),
      shortage,
      onWritesAgain,
      idleHeads: options.idleMemory,
    });
  const recovered = await committer.recover();
  // (Several writers taking over one writer's KV say what they did themselves.)
  if (recovered > 0 && mode === "local") {
    log.info(`Moved ${recovered} acknowledged tasks and readings from the inbox to their streams`);
  }
  const leases = mode === "deploy"
    ? new LeaseManager({ kv, owner: instance, clock, ttlMs: options.leaseTtlMs, log: (l) => log.warn(l) })
    : undefined;
  const admin = await loadAdminToken(kv, config.ADMIN_TOKEN);
  const reads = new ReadBatcher(kv);
  const devices = new DeviceDirectory(kv, clock, reads);
  devices.watchRevocations(abort.signal, (line) => log.warn(line));
  const channels = new ChannelRegistry(kv, clock);
  await channels.ensureDefaults();
  channels.watchChanges(abort.signal, (line) => log.warn(line));
  const scripts = new Set(Object.keys(manifest));
  // One writer knows every message id it stores; the ids earlier processes stored are read in
  // meanwhile (until then every id is looked up in KV, as with several writers).
  const seenIds = mode === "local" ? new SeenIds(config.DEDUP_WINDOW, clock) : undefined;
  const seenIdsLoaded = seenIds?.load(kv, abort.signal).then(
    (n) => void (n && log.info(`Read ${n} message ids stored within the dedup window`)),
    (err) => log.warn(`Cannot read the stored message ids (each is looked up in KV instead): ${err}`),
  );

  const pumpFeed = new PumpFeed(
    committer,
    clock,
    config.PUMPS_RETENTION,
    (err) => log.warn(`Publishing a pump change failed: ${err}`),
  );
  const pumpRuntime = new ActorRuntime<PumpState, PumpCommand, PumpEvent>({
    decider: pumpDecider,
    streamOf: pumpStream,
    storage: new KvActorStorage<PumpState>(kv, committer, reads),
    clock,
    // Other instances may append to a pump: reads catch up from the log's head.
    verifyHead: mode === "deploy"
      ? async (id) => (await kv.get<number>(keys.head(pumpStream(id)))).value ?? 0
      : undefined,
    // Every pump state change is published on the system channel `_pumps`.
    onChange: (id, state) => pumpFeed.changed(id, state),
  });
  /** A script's thread ran away with the memory (see `onRunaway`). */
  let runaway = false;
  const executor = createExecutor({
    manifest,
    workerUrl: options.workerUrl ?? new URL("./engine/worker_entry.ts", import.meta.url),
    settings: { weatherApiUrl: config.WEATHER_API_URL },
    timeoutMs: config.SCRIPT_TIMEOUT_MS,
    getDocument: async (collection, id) => {
      const e = await kv.get(keys.document(collection, id));
      return { value: e.value, versionstamp: e.versionstamp };
    },
    workers: config.SCRIPT_WORKERS,
    memoryLimit: config.MEMORY_LIMIT_MB === undefined ? undefined : config.MEMORY_LIMIT_MB * 2 ** 20,
    onRunaway: (message) => {
      runaway = true;
      log.error(message);
      options.onFatal?.(message);
    },
    log: (line) => log.warn(line),
  });
  if (!executor.isolated) log.warn("Scripts run in-process: a script stuck in a busy loop cannot be stopped here");
  const planner = new EffectPlanner({
    channels,
    scripts,
    pumps: pumpRuntime,
    maxValueBytes: 60 * 1024,
    topicRetentionMs: config.TOPIC_RETENTION,
    taskRetentionMs: config.TASK_RETENTION,
    maxChainWork: config.MAX_CHAIN_WORK,
  });
  /** One bucket per device for every message it sends: ingest and public script calls alike. */
  const rateLimiter = config.RATE_LIMIT === null
    ? undefined
    : new RateLimiter(config.RATE_LIMIT, Math.max(1, config.RATE_LIMIT), clock);
  const ingest = new Ingest({
    kv,
    committer,
    channels,
    scripts,
    clock,
    dedupWindowMs: config.DEDUP_WINDOW,
    multiWriter: mode === "deploy",
    seenIds,
    onAccepted: (envelope, result, ms) => instruments.accepted(envelope, result, ms),
    onRefused: (protocol, code) => instruments.refused(protocol, code),
    topicRetentionMs: config.TOPIC_RETENTION,
    maxBodyBytes: config.MAX_BODY_BYTES,
    rateLimiter,
  });
  const runner = new PartitionRunner({
    kv,
    reads,
    committer,
    executor,
    planner,
    channels,
    waker,
    clock,
    retry: { maxAttempts: config.MAX_ATTEMPTS, baseDelayMs: config.RETRY_BASE_MS },
    resultTtlMs: config.DEDUP_WINDOW,
    leases,
    onRun: (method, outcome) => instruments.ran(method, outcome),
    log: (line) => log.warn(line),
    idleLanes: options.idleMemory,
  });
  resumeStalled = () => runner.resumeStalled();
  // One process: a start after a crash guards the lanes it resumes (see `PartitionRunner`); after a graceful stop,
  // what it marked as running was cut by that stop, not the cause of a crash. The sweep comes before the wake-ups
  // a stopped process left in the KV queue, so that every lane it resumes is guarded.
  const crashed = mode === "local" && await lastStopCrashed(kv);
  const resumed = await runner.sweep(false, crashed);
  if (resumed > 0) log.info(`Resuming queued work on ${resumed} stream(s)`);
  runner.start();
  // A subscriber script added on another instance: a message published here before this instance
  // heard of it woke only the scripts subscribed before.
  if (mode === "deploy") {
    channels.onChange((name) => {
      if (name === null) runner.sweep(true).catch((err) => log.warn(`Sweep after a channel change: ${err}`));
    });
  }
  const passivation = setInterval(() => pumpRuntime.passivate(), 60_000);
  const streamLimitLines = new LogBudget(
    (line) => log.warn(line),
    10,
    60_000,
    (n) =>
      `${n} more connection(s) refused within the minute for devices at their limit (sluice_device_connections_refused_total)`,
  );
  const trimmer = config.READING_RETENTION === undefined ? undefined : new HistoryTrimmer<PumpState>({
    kv,
    clock,
    retentionMs: config.READING_RETENTION,
    decider: pumpDecider,
    prefix: PUMP_STREAM_PREFIX,
    idOf: (stream) => stream.slice(PUMP_STREAM_PREFIX.length),
    log: (line) => log.info(line),
  });
  trimmer?.schedule(TRIM_FIRST_MS, TRIM_EVERY_MS, abort.signal);
  // One writer rings the topic doorbells itself; several instances watch the head keys.
  const topics = new TopicHub(
    kv,
    log,
    mode === "local" ? committerDoorbell(committer) : watchDoorbell(kv, log),
    config.SLOW_CLIENT_TIMEOUT,
  );

  let closing: Promise<void> | null = null;
  return {
    config,
    kv,
    log,
    clock,
    admin,
    devices,
    channels,
    channelAdmin: new ChannelAdmin({
      kv,
      channels,
      scripts,
      headOf: committer.headOf,
      lanes: runner,
    }),
    manifest,
    ingest,
    inline: new InlineRunner({
      kv,
      executor,
      planner,
      committer,
      dedupWindowMs: config.DEDUP_WINDOW,
      multiWriter: mode === "deploy",
      rateLimiter,
      onRun: (method, outcome) => instruments.ran(method, outcome),
      onCall: (protocol, ms, err) =>
        err === undefined ? instruments.called(protocol, ms) : ingest.refused(protocol, err),
    }),
    runner,
    pumps: new PumpViews(kv, committer, pumpRuntime),
    deadLetters: new DeadLetters(kv, committer, config.TASK_RETENTION),
    topics,
    refused: new RefusedLog(kv, committer, clock),
    authThrottle: new AuthThrottle(clock),
    deviceStreams: new DeviceStreams(
      MAX_STREAMS_PER_DEVICE,
      (id, limit) =>
        streamLimitLines.say(`Device "${id}" holds ${limit} connections (WebSocket, SSE, MQTT): refusing more`),
    ),
    executor,
    committer,
    instruments,
    livePumps: () => pumpRuntime.liveCount(),
    trimmer,
    mode,
    instance,
    signal: abort.signal,
    close: ({ abandon = false, graceMs } = {}) =>
      closing ??= (async () => {
        abort.abort();
        clearInterval(passivation);
        topics.close();
        if (abandon) {
          leases?.abandon();
          executor.close();
          await runner.stop();
        } else {
          await runner.stop(graceMs);
          executor.close();
          pumpFeed.close();
        }
        try {
          await committer.close();
          await seenIdsLoaded;
          waker.close();
          // After a runaway script the stop does not count as clean: the next start runs the tasks it resumes one
          // at a time, so that the script that ran away, if it does again, is found and ends dead.
          if (!abandon && !runaway && mode === "local") await kv.set(keys.cleanStop(), clock.now());
        } finally {
          if (!options.kv) kv.close();
          lock?.release();
        }
      })(),
  };
}

/** Whether the last process on this KV stopped dead (no graceful stop said otherwise); clears the stop's word. */
async function lastStopCrashed(kv: Deno.Kv): Promise<boolean> {
  const clean = (await kv.get(keys.cleanStop())).value !== null;
  if (clean) await deleteKeys(kv, await Array.fromAsync(kv.list({ prefix: keys.runMarkers() }), (e) => e.key));
  await kv.delete(keys.cleanStop());
  return !clean;
}

/** The doorbell of one writer: the committer says which heads moved right after each commit. */
function committerDoorbell(committer: Committer): Doorbell {
  const rings = new Map<string, Set<(head: number) => void>>();
  committer.onAppended((heads) => {
    for (const [stream, head] of heads) for (const ring of rings.get(stream) ?? []) ring(head);
  });
  return (stream, ring) => {
    const set = rings.get(stream) ?? new Set();
    rings.set(stream, set.add(ring));
    return () => {
      set.delete(ring);
      if (set.size === 0) rings.delete(stream);
    };
  };
}

/** The folder of a file's path ("." for a bare name). */
function dirOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
}

/** The KV: managed on Deno Deploy, else the file at KV_PATH, locked by this process. */
async function openKv(
  config: Config,
  log: (line: string) => void,
): Promise<{ kv: Deno.Kv; lock?: { release(): void } }> {
  // On Deno Deploy the managed KV; SLUICE_MODE=deploy elsewhere keeps KV_PATH (one process, as locally).
  const where = kvLocation(config);
  if (where.kind === "managed") return { kv: await Deno.openKv() };
  if (where.kind === "memory") return { kv: await Deno.openKv(":memory:") };
  const path = where.path;
  await Deno.mkdir(dirOf(path), { recursive: true });
  // Locally one process owns a KV file, in either mode: a second one on it stops here.
  const lock = await lockKvFile(path, log);
  try {
    return { kv: await Deno.openKv(path), lock };
  } catch (err) {
    lock.release();
    throw new Error(`cannot open the KV file ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
