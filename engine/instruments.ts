import type { Envelope, IngestResult, Protocol } from "../core/envelope.ts";
import { LATENCY_BUCKETS, Metrics } from "../core/metrics.ts";
import type { CommitStats } from "../store/committer.ts";
import type { Outcome } from "./script_runner.ts";

/** The metrics Sluice records as it goes, and the hooks that feed them. */
export interface Instruments {
  readonly metrics: Metrics;
  /** A message committed (`ms`: from ingest taking it to its commit). */
  accepted(envelope: Envelope, result: IngestResult, ms: number): void;
  refused(protocol: Protocol, code: string): void;
  /** A public script's call answered (`kind="script"`), from receipt to answer. */
  called(protocol: Protocol, ms: number): void;
  committed(stats: CommitStats): void;
  ran(method: string, outcome: Outcome): void;
  /** A WebSocket or SSE subscriber cut off for reading nothing. */
  cutOff(protocol: "ws" | "sse"): void;
  /** A message not queued for a kept MQTT session whose queue is full (`MQTT_MAX_QUEUED`). */
  mqttQueueDropped(): void;
  /** An HTTP request answered 503 at once: `MAX_HTTP_IN_FLIGHT` were being handled. */
  httpBusy(): void;
}

/** Creates the registry with Sluice's counters and histograms. */
export function createInstruments(): Instruments {
  const metrics = new Metrics();
  const startedAt = Math.round(Date.now() / 1000);
  metrics.collect(
    "process_start_time_seconds",
    "When this Sluice process started (Unix time, seconds): another value means a restart, counters from zero",
    () => [{ value: startedAt }],
  );
  const ingested = metrics.counter("sluice_ingest_total", "Messages committed, by protocol and kind");
  const duplicates = metrics.counter("sluice_ingest_duplicates_total", "Resends answered from the dedup window");
  const refused = metrics.counter(
    "sluice_ingest_refused_total",
    "Messages refused (unreadable, invalid, unknown channel or script, over a limit), by protocol and code",
  );
  const ingestSeconds = metrics.histogram(
    "sluice_ingest_seconds",
    "From ingest taking a message to its commit (the moment the sender is acked), by protocol",
    LATENCY_BUCKETS,
  );
  const callSeconds = metrics.histogram(
    "sluice_script_call_seconds",
    "Public script calls, from receipt to answer (the run and its writes' commit), by protocol",
    LATENCY_BUCKETS,
  );
  const scriptSeconds = metrics.histogram(
    "sluice_script_seconds",
    "Script run time, by script and outcome",
    LATENCY_BUCKETS,
  );
  const runs = metrics.counter(
    "sluice_script_runs_total",
    "Script runs, by script and outcome (ok, failed, timeout, interrupted)",
  );
  const commitRequests = metrics.histogram(
    "sluice_kv_commit_requests",
    "Write requests group-committed in one KV atomic commit",
    [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
  );
  const commitMutations = metrics.histogram(
    "sluice_kv_commit_mutations",
    "Mutations in one KV atomic commit",
    [1, 5, 10, 25, 50, 100, 250, 500, 1000],
  );
  const commitSeconds = metrics.histogram("sluice_kv_commit_seconds", "Time of one group commit", LATENCY_BUCKETS);
  const cutOff = metrics.counter(
    "sluice_topic_subscribers_cut_off_total",
    "WebSocket and SSE subscribers cut off for reading nothing for SLOW_CLIENT_TIMEOUT, by protocol",
  ).declare({ protocol: "ws" }).declare({ protocol: "sse" });
  const queueDropped = metrics.counter(
    "sluice_mqtt_queue_dropped_total",
    "Messages not queued for a kept MQTT session (clean session off) because MQTT_MAX_QUEUED were queued for it",
  ).declare();
  const httpBusy = metrics.counter(
    "sluice_http_requests_refused_total",
    "HTTP requests answered 503 at once because MAX_HTTP_IN_FLIGHT requests were being handled",
  ).declare();
  return {
    metrics,
    accepted(envelope, result, ms) {
      const labels = { protocol: envelope.protocol, kind: envelope.kind };
      if (result.duplicate) return duplicates.inc(labels);
      ingested.inc(labels);
      ingestSeconds.observe(ms / 1000, { protocol: envelope.protocol });
    },
    refused: (protocol, code) => refused.inc({ protocol, code }),
    called(protocol, ms) {
      ingested.inc({ protocol, kind: "script" });
      callSeconds.observe(ms / 1000, { protocol });
    },
    committed(stats) {
      commitRequests.observe(stats.requests);
      commitMutations.observe(stats.mutations);
      commitSeconds.observe(stats.ms / 1000);
    },
    ran(method, outcome) {
      const result = outcome.ok ? "ok" : outcome.interrupted ? "interrupted" : outcome.timedOut ? "timeout" : "failed";
      runs.inc({ method, outcome: result });
      scriptSeconds.observe(outcome.ms / 1000, { method, outcome: result });
    },
    cutOff: (protocol) => cutOff.inc({ protocol }),
    mqttQueueDropped: () => queueDropped.inc(),
    httpBusy: () => httpBusy.inc(),
  };
}
