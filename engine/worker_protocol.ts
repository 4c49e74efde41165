import type { ScriptRequest, ScriptSettings } from "./script_api.ts";
import type { Outcome } from "./script_runner.ts";

/** Messages from the pool to a script worker. */
export type ToWorker =
  | {
    readonly t: "init";
    readonly settings: ScriptSettings;
    readonly scripts: readonly string[];
    readonly timeoutMs: number;
    readonly httpTimeoutMs: number;
  }
  /** Batches to run, each in order (the batches of one tick travel together). */
  | {
    readonly t: "run";
    readonly runs: readonly { readonly batch: number; readonly requests: readonly ScriptRequest[] }[];
  }
  | {
    readonly t: "doc";
    readonly call: number;
    readonly value?: unknown;
    readonly versionstamp?: string | null;
    readonly error?: string;
  }
  /** Finish the runs in progress, start no new one. */
  | { readonly t: "halt" };

/** Messages from a script worker to the pool. */
export type FromWorker =
  /** The batch's runs begin (its scripts loaded): from here a silent worker may be running one synchronously. */
  | { readonly t: "started"; readonly batch: number }
  | { readonly t: "outcome"; readonly batch: number; readonly index: number; readonly outcome: Outcome }
  /** The batch is over; it carries the last run's outcome (one message fewer per batch). */
  | { readonly t: "end"; readonly batch: number; readonly last?: { readonly index: number; readonly outcome: Outcome } }
  | { readonly t: "doc"; readonly call: number; readonly collection: string; readonly id: string }
  | { readonly t: "beat" }
  /** An error a script left where no run could catch it (a timer that threw, a promise not awaited). */
  | { readonly t: "stray"; readonly error: string }
  /** The worker cannot go on as it is (a script changed a built-in it cannot undo): replace it. */
  | { readonly t: "replace"; readonly reason: string }
  /** Initialised, scripts loaded: the pool's watchdog starts counting from here. */
  /** Every script was loaded; `failed` are those that could not be (missing file, syntax error, no default export). */
  | { readonly t: "ready"; readonly failed: readonly { readonly script: string; readonly error: string }[] }
  /** Several of the above, posted in one tick. */
  | { readonly t: "many"; readonly messages: readonly FromWorker[] };
