/** Measuring helpers for the benchmarks: CPU and memory of a process, percentiles. */

/** CPU seconds (user + system) a process used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
  } catch {
    return 0;
  }
}

/**
 * CPU of a process by thread, grouped by role: Deno's main JS thread (the thread whose id is the
 * process id), the KV's SQLite thread (`sw-…`), the script workers (`worker-…`), V8's helper threads
 * (GC, compiler), and the rest (Tokio, I/O). Seconds so far, or a share (% of one core) from `shares`.
 */
export interface ThreadCpu {
  readonly main: number;
  readonly kv: number;
  readonly scripts: number;
  readonly v8: number;
  readonly other: number;
}

export function threadCpuSeconds(pid: number): ThreadCpu {
  const cpu = { main: 0, kv: 0, scripts: 0, v8: 0, other: 0 };
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/stat`);
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
        const role = t.name === String(pid)
          ? "main"
          : name.startsWith("sw-")
          ? "kv"
          : name.startsWith("worker-")
          ? "scripts"
          : name.startsWith("V8 ")
          ? "v8"
          : "other";
        cpu[role] += seconds;
      } catch {
        // the thread ended
      }
    }
  } catch {
    // the process ended
  }
  return cpu;
}

/** Each role's CPU share (% of one core) between two readings `seconds` apart. */
export function threadShares(before: ThreadCpu, after: ThreadCpu, seconds: number): ThreadCpu {
  const share = (k: keyof ThreadCpu) => Math.round(((after[k] - before[k]) / seconds) * 100);
  return { main: share("main"), kv: share("kv"), scripts: share("scripts"), v8: share("v8"), other: share("other") };
}

/** CPU of Sluice (`pid`, and by thread) and of this process (the load generator), from the last `start()`. */
export function cpuMeter(pid: number): {
  start(): void;
  /** Shares (% of one core) over `seconds` since `start()`. */
  read(seconds: number): { sluiceCpu: number; loadCpu: number; threads: ThreadCpu };
} {
  let sluice = 0, self = 0, threads = threadCpuSeconds(pid);
  const start = () => (sluice = cpuSeconds(pid), self = selfCpuSeconds(), threads = threadCpuSeconds(pid));
  start();
  const pct = (cpu: number, seconds: number) => Math.round((cpu / seconds) * 100);
  return {
    start,
    read: (seconds) => ({
      sluiceCpu: pct(cpuSeconds(pid) - sluice, seconds),
      loadCpu: pct(selfCpuSeconds() - self, seconds),
      threads: threadShares(threads, threadCpuSeconds(pid), seconds),
    }),
  };
}

/** Resident memory of a process, MiB. */
export function rssMiB(pid: number): number {
  try {
    const line = Deno.readTextFileSync(`/proc/${pid}/status`).split("\n").find((l) => l.startsWith("VmRSS:"));
    return Math.round(Number(line?.split(/\s+/)[1] ?? 0) / 1024);
  } catch {
    return 0;
  }
}

/** p50/p95/p99 of a list of numbers (ms), rounded to 0.1. */
export function percentiles(values: number[]): { p50: number; p95: number; p99: number } {
  const v = [...values].sort((a, b) => a - b);
  const at = (p: number) => Math.round((v[Math.min(v.length - 1, Math.floor(v.length * p))] ?? 0) * 10) / 10;
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

/** The bench process's own CPU seconds (the simulators run in it). */
function selfCpuSeconds(): number {
  return cpuSeconds(Deno.pid);
}

/**
 * Sluice's group-commit totals so far, from its `/metrics`, and what the process wrote: bytes sent
 * to the disk (the KV's WAL and its checkpoints; KV's cost grows with the pages a commit touches)
 * and write calls, from `/proc/<pid>/io`.
 */
export interface KvCommitTotals {
  readonly commits: number;
  readonly mutations: number;
  readonly seconds: number;
  readonly diskBytes: number;
  readonly writeCalls: number;
}

export async function kvCommitTotals(url: string, pid: number): Promise<KvCommitTotals> {
  const [commits, mutations, seconds] = await metricValues(url, [
    "sluice_kv_commit_seconds_count",
    "sluice_kv_commit_mutations_sum",
    "sluice_kv_commit_seconds_sum",
  ]);
  return { commits: commits!, mutations: mutations!, seconds: seconds!, ...processIo(pid) };
}

/** Bytes a process had written to the disk, and its write calls, so far (zeros where `/proc` lacks them). */
function processIo(pid: number): { diskBytes: number; writeCalls: number } {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/io`);
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(text)?.[1] ?? 0);
    return { diskBytes: field("write_bytes"), writeCalls: field("syscw") };
  } catch {
    return { diskBytes: 0, writeCalls: 0 };
  }
}

/** Values of unlabelled samples in Sluice's `/metrics` (0 for a name it does not show). */
export async function metricValues(url: string, names: readonly string[]): Promise<number[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return names.map((name) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? 0));
}

/** What the KV commits came to between two totals: how busy the committer was, and per message. */
export function kvCommitFigures(
  before: KvCommitTotals,
  after: KvCommitTotals,
  wallSeconds: number,
  messages: number,
): KvCommitFigures {
  const commits = Math.max(1, after.commits - before.commits);
  const perMsg = (d: number) => Math.round((d / Math.max(1, messages)) * 10) / 10;
  return {
    busyPct: Math.round(((after.seconds - before.seconds) / wallSeconds) * 100),
    mutationsPerMsg: perMsg(after.mutations - before.mutations),
    msgsPerCommit: Math.round((messages / commits) * 10) / 10,
    diskKiBPerMsg: perMsg((after.diskBytes - before.diskBytes) / 1024),
    writesPerMsg: perMsg(after.writeCalls - before.writeCalls),
  };
}

/** See `kvCommitFigures`. */
export interface KvCommitFigures {
  readonly busyPct: number;
  readonly mutationsPerMsg: number;
  readonly msgsPerCommit: number;
  /** KiB the process wrote to the disk, and its write calls, per message. */
  readonly diskKiBPerMsg: number;
  readonly writesPerMsg: number;
}
