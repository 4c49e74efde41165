/// <reference lib="deno.worker" />
import type { ScriptManifest } from "./manifest.ts";
import type { ContextHost, VersionedDocument } from "./script_context.ts";
import { failedRun, type Outcome, runInOrder, scriptError, ScriptLoader } from "./script_runner.ts";
import type { FromWorker, ToWorker } from "./worker_protocol.ts";
import { perTick } from "./per_tick.ts";
import { jsonGuard } from "./json_guard.ts";

/** Runs inside a Worker: serves batches of script runs for the pool. */
export function serveWorker(manifest: ScriptManifest): void {
  const loader = new ScriptLoader(manifest);
  const calls = new Map<number, { resolve: (v: VersionedDocument) => void; reject: (e: Error) => void }>();
  let nextCall = 0;
  let host: ContextHost | null = null;
  let timeoutMs = 5000;
  let halted = false;
  let ready: Promise<void> = Promise.resolve();
  // The pool's channel is Sluice's own: a script's postMessage would reach the pool as if the worker said it.
  const toPool = self.postMessage.bind(self);
  Object.defineProperty(self, "postMessage", {
    value: () => {
      throw new Error("Scripts cannot post messages: the worker's channel belongs to Sluice");
    },
  });
  // A change to what JSON copies go through that cannot be undone: the worker is replaced (after this run's outcome).
  jsonGuard.onStuck = (what) =>
    setTimeout(() =>
      post({ t: "replace", reason: `Script worker replaced: a script changed ${what} for good; its runs go again` })
    );
  // Ending the worker would leave the runs on it hanging until their time limit, then taken for busy loops.
  for (const [target, name] of [[Deno, "exit"], [self, "close"]] as const) {
    Object.defineProperty(target, name, {
      value: () => {
        throw new Error(
          `Scripts cannot call ${target === Deno ? "Deno.exit" : "close"}: the worker runs other scripts too ` +
            "(throw an error to fail a run, or a PermanentError to fail it for good)",
        );
      },
    });
  }
  // Messages of one tick travel together: one postMessage for many outcomes.
  const outbox = perTick<FromWorker>((messages) =>
    toPool(messages.length === 1 ? messages[0]! : { t: "many", messages } satisfies FromWorker)
  );
  const post = (m: FromWorker) => outbox.push(m);

  // A stray error in a script's timer (or a promise it left behind) must not take the worker down;
  // no run is there to fail with it, so the pool logs it (five a second at most).
  let strays = 0, straySecond = 0;
  const stray = (error: unknown) => {
    const second = Math.floor(Date.now() / 1000);
    if (second !== straySecond) straySecond = second, strays = 0;
    if (strays++ < 5) post({ t: "stray", error: scriptError(error) }); // cut, with where in a script it failed
  };
  self.addEventListener("error", (e) => (e.preventDefault(), stray(e.error ?? e.message)));
  self.addEventListener("unhandledrejection", (e) => (e.preventDefault(), stray(e.reason)));
  setInterval(() => post({ t: "beat" }), 100);

  self.onmessage = (e: MessageEvent<ToWorker>) => {
    const m = e.data;
    switch (m.t) {
      case "init":
        timeoutMs = m.timeoutMs;
        host = {
          scripts: new Set(m.scripts),
          settings: m.settings,
          httpTimeoutMs: m.httpTimeoutMs,
          getDocument: (collection, id) =>
            new Promise<VersionedDocument>((resolve, reject) => {
              const call = nextCall++;
              calls.set(call, { resolve, reject });
              post({ t: "doc", call, collection, id });
            }),
        };
        // Load every script first, so no run's time limit pays for module loading; runs wait.
        ready = Promise.allSettled(m.scripts.map((s) => loader.load(s))).then((loaded) =>
          post({
            t: "ready",
            failed: loaded.flatMap((r, i) =>
              r.status === "rejected" ? [{ script: m.scripts[i]!, error: scriptError(r.reason, true) }] : []
            ),
          })
        );
        break;
      case "run": {
        const run = host;
        if (!run) throw new Error("Worker used before init");
        for (const { batch, requests } of m.runs) {
          let last: { index: number; outcome: Outcome } | undefined;
          let next = 0;
          const report = (index: number, outcome: Outcome) => {
            next = index + 1;
            if (index === requests.length - 1) last = { index, outcome };
            else post({ t: "outcome", batch, index, outcome });
          };
          ready.then(() => {
            post({ t: "started", batch });
            return runInOrder(requests, loader, run, timeoutMs, report, () => halted);
          })
            // Never an end without the outcome of the run it stopped at: the lane would run it again at once.
            .catch((err) => report(next, failedRun(err)))
            .finally(() => post({ t: "end", batch, last }));
        }
        break;
      }
      case "halt":
        halted = true;
        break;
      case "doc": {
        const call = calls.get(m.call);
        calls.delete(m.call);
        if (m.error) call?.reject(new Error(m.error));
        else call?.resolve({ value: m.value ?? null, versionstamp: m.versionstamp ?? null });
        break;
      }
      default: {
        const never: never = m;
        throw new Error(`Unknown message ${JSON.stringify(never)}`);
      }
    }
  };
}
