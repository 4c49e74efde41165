import assert from "node:assert/strict";
import type { ScriptManifest } from "./manifest.ts";
import type { Script, ScriptRequest } from "./script_api.ts";
import type { ContextHost } from "./script_context.ts";
import { type Outcome, runInOrder, ScriptLoader } from "./script_runner.ts";

const script = (fn: Script) => ({ public: false, load: () => Promise.resolve({ default: fn }) });

function request(method: string, n: number): ScriptRequest {
  return {
    method,
    body: null,
    params: null,
    device: "d1",
    channel: "c",
    taskId: `t.${n}`,
    attempt: 1,
    receivedAt: "2026-11-27T00:00:00.000Z",
  };
}

const host: ContextHost = {
  scripts: new Set(["app/save", "app/peek", "app/read"]),
  settings: { weatherApiUrl: null },
  getDocument: () => Promise.resolve({ value: null, versionstamp: null }),
  httpTimeoutMs: 10_000,
};

Deno.test("a run that changes a document an earlier run of its batch saved, without saving it, changes neither that write nor what later runs read", async () => {
  const manifest: ScriptManifest = {
    "app/save": script((_r, ctx) => ctx.documents.save("c", "a", { n: 1, tags: ["x"] })),
    "app/peek": script(async (_r, ctx) => {
      const doc = (await ctx.documents.get("c", "a")) as { n: number; tags: string[] };
      doc.n = 99; // a local change, never saved
      doc.tags.push("y");
      return doc.n;
    }),
    "app/read": script((_r, ctx) => ctx.documents.get("c", "a")),
  };
  const outcomes: Outcome[] = [];
  await runInOrder(
    ["app/save", "app/peek", "app/read"].map(request),
    new ScriptLoader(manifest),
    host,
    5000,
    (i, o) => outcomes[i] = o,
  );
  assert.ok(outcomes.every((o) => o.ok), JSON.stringify(outcomes));
  const [saved, , read] = outcomes as Extract<Outcome, { ok: true }>[];
  assert.deepEqual(saved!.effects, [{ kind: "saveDocument", collection: "c", id: "a", doc: { n: 1, tags: ["x"] } }]);
  assert.deepEqual(read!.result, { n: 1, tags: ["x"] });
});
