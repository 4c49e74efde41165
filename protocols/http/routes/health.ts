import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Sluice } from "../../../sluice.ts";
import { defineRoute, type RouteDeps } from "../route.ts";

import type { Check } from "../../adapter.ts";

/** Health of every part; 503 only when KV cannot be read or written. */
export function healthRoutes(
  app: OpenAPIHono,
  deps: RouteDeps,
  sluice: Sluice,
  checks: () => Record<string, Check>,
): void {
  const Health = z.object({ status: z.enum(["ok", "degraded"]), checks: z.record(z.string(), z.string()) });
  defineRoute(app, deps, {
    method: "get",
    path: "/healthz",
    summary: "Health: ok, or degraded when a broker is unreachable; 503 only when KV is",
    tags: ["ops"],
    access: "anyone",
    responses: {
      200: {
        description: "Serving",
        schema: Health,
      },
      503: { description: "KV unreachable, or taken over by another process (writes refused)", schema: Health },
    },
  }, async ({ c }) => {
    let kv: Check = "ok";
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // One KV read; false when another process took the KV over (this one then refuses every write).
      const writable = await Promise.race([
        sluice.committer.writable(),
        new Promise<never>((_, reject) => timer = setTimeout(() => reject(new Error("timeout")), 2000)),
      ]);
      if (!writable) kv = "degraded";
    } catch {
      kv = "degraded";
    } finally {
      clearTimeout(timer);
    }
    const all = { kv, ...checks() };
    if (kv !== "ok") return c.json({ status: "degraded", checks: all }, 503);
    const degraded = Object.values(all).includes("degraded");
    return c.json({ status: degraded ? "degraded" : "ok", checks: all });
  });
}
