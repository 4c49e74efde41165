import type { KvCommitFigures, ThreadCpu } from "./measure.ts";

/** One benchmark scenario's figures. */
export interface ScenarioResult {
  readonly scenario: string;
  /** Messages (or deliveries, or activations) a second. */
  readonly rate?: number;
  readonly unit?: string;
  /** Ingest rows: tasks the same process finished a second while the load ran (the processing kept up, or not). */
  readonly tasksDoneRate?: number;
  /** Send → acknowledgement, ms. */
  readonly ackLatency?: { p50: number; p95: number; p99: number };
  /** Send → pump state updated (pump event committed), ms. */
  readonly stateLatency?: { p50: number; p95: number; p99: number };
  /** Publish → delivery to a subscriber, ms. */
  readonly deliveryLatency?: { p50: number; p95: number; p99: number };
  /** Sluice's resident memory at the end, MiB. */
  readonly rssMiB?: number;
  /** CPU used while measuring, % of one core: Sluice, and the load generator. */
  readonly sluiceCpu?: number;
  readonly loadCpu?: number;
  /** Sluice's CPU by thread while measuring, % of one core (see `ThreadCpu`). */
  readonly threads?: ThreadCpu;
  /** The ingest rate as a fraction of the KV group-commit ceiling (sets/s) measured in the same run. */
  readonly ratioToKv?: number;
  /** Sluice's KV commits while measuring: share of the time one was in flight; per message, KV mutations and disk writes. */
  readonly kvCommits?: KvCommitFigures;
  readonly target?: string;
  readonly met?: boolean;
  readonly notes?: string;
}
