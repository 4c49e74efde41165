import type { OpenAPIHono } from "@hono/zod-openapi";
import { UnauthorizedError } from "../../../core/errors.ts";
import { adapterSamples, reusedFor, scrapeGauges } from "../../../engine/metrics_scrape.ts";
import type { Sluice } from "../../../sluice.ts";
import { kvLocation } from "../../../config.ts";
import { kvFileBytes } from "../../../store/kv_file_size.ts";
import { hashSecret, sameHash } from "../../../store/hash.ts";
import { tokenOf } from "../auth.ts";
import { errorResponse } from "../errors.ts";
import { errorAnswer, remoteAddress, type RouteDeps, throttled } from "../route.ts";
import type { Adapter } from "../../adapter.ts";

/** `GET /metrics` in Prometheus' text format; needs `METRICS_TOKEN` (or the admin token) when it is set. */
export function metricsRoutes(
  app: OpenAPIHono,
  deps: RouteDeps,
  sluice: Sluice,
  adapters: () => readonly Pick<Adapter, "name" | "stats" | "connections">[],
): void {
  const required = sluice.config.METRICS_TOKEN ? hashSecret(sluice.config.METRICS_TOKEN) : null;
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/metrics",
    summary: "Prometheus metrics (open, or with METRICS_TOKEN as bearer token when that is set)",
    tags: ["ops"],
    // With METRICS_TOKEN set, the metrics token (or the admin's) is required; without it, no token is read.
    security: required ? [{ bearer: [] }] : [],
    responses: {
      200: {
        description: "Prometheus' text format",
        content: { "text/plain; version=0.0.4": { schema: { type: "string" } } },
      },
      ...(required
        ? {
          401: errorAnswer("No token, or not the metrics token or the admin's"),
          429: errorAnswer("Too many failed authentications from this address", true),
        }
        : {}),
      500: errorAnswer("Internal error"),
    },
  });
  const where = kvLocation(sluice.config);
  const gauges = reusedFor(async () => [
    ...await scrapeGauges(
      sluice.kv,
      sluice.channels,
      sluice.committer.headOf,
      sluice.clock.now(),
      (stream, seq) => sluice.committer.unmoved(stream, seq),
    ),
    ...where.kind === "file"
      ? [{
        name: "sluice_kv_file_bytes",
        help: "Size of the local KV on disk: its SQLite file (data) and write-ahead log (wal)",
        samples: Object.entries(await kvFileBytes(where.path)).map(([file, value]) => ({ labels: { file }, value })),
      }]
      : [],
  ]);
  app.get("/metrics", async (c) => {
    try {
      if (required) {
        // Under the brute-force throttle like every other token check: the admin token works here too.
        await throttled(deps.throttle, remoteAddress(c, deps.trustedProxies), () => {
          const token = tokenOf(c.req.raw, false);
          if (!token || !(sameHash(hashSecret(token), required) || deps.admin.verify(token))) {
            throw new UnauthorizedError("GET /metrics needs the metrics token (Authorization: Bearer …)");
          }
          return Promise.resolve();
        });
      }
      const stats = sluice.runner.stats;
      const m = sluice.instruments.metrics;
      const extra = [
        { name: "sluice_tasks_done_total", help: "Tasks done", samples: [{ value: stats.done }] },
        {
          name: "sluice_task_attempts_failed_total",
          help: "Failed attempts",
          samples: [{ value: stats.failedAttempts }],
        },
        {
          name: "sluice_tasks_expired_total",
          help: "Tasks that expired (TASK_RETENTION) before they ran, passed over",
          samples: [{ value: stats.expired }],
        },
        {
          name: "sluice_device_connections_refused_total",
          help: "WebSocket, SSE and MQTT connections refused because their device held its limit (100)",
          samples: [{ value: sluice.deviceStreams.refused }],
        },
        {
          name: "sluice_pump_events_trimmed_total",
          help: "Pump events recorded over READING_RETENTION ago, folded into their pump's base state and deleted",
          samples: [{ value: sluice.trimmer?.trimmed ?? 0 }],
        },
        {
          name: "sluice_dead_letters_total",
          help: "Tasks that went to the dead letters",
          samples: [{ value: stats.dead }],
        },
        {
          name: "sluice_dedup_lookups_total",
          help: "Message ids checked for an earlier sending: read from KV, or known new without a read",
          samples: [
            { labels: { source: "kv" }, value: sluice.ingest.dedupLookups.read },
            { labels: { source: "memory" }, value: sluice.ingest.dedupLookups.skipped },
          ],
        },
        { name: "sluice_pumps_live", help: "Pump actors held in memory", samples: [{ value: sluice.livePumps() }] },
        {
          name: "sluice_topic_subscribers",
          help: "Live topic subscriptions (WebSocket, SSE, bridges)",
          samples: [{ value: sluice.topics.subscriberCount() }],
        },
        {
          name: "sluice_connections",
          help:
            "Client connections open, by protocol: WebSocket sessions, SSE streams, MQTT connections (embedded broker)",
          samples: adapters().flatMap((a) =>
            a.connections ? [{ labels: { protocol: a.name }, value: a.connections() }] : []
          ),
        },
        {
          name: "sluice_inbox_events",
          help: "Tasks acknowledged from the inbox and not yet moved to their streams",
          samples: [{ value: sluice.committer.inboxSize }],
        },
        {
          name: "sluice_process_heap_used_bytes",
          help: "V8 heap in use",
          samples: [{ value: Deno.memoryUsage().heapUsed }],
        },
        {
          name: "sluice_process_resident_bytes",
          help: "Resident memory of the process",
          samples: [{ value: Deno.memoryUsage().rss }],
        },
        ...(await gauges()),
        ...adapters().flatMap((a) => a.stats ? adapterSamples(a.name, a.stats) : []),
      ];
      return c.body(m.render(extra), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    } catch (err) {
      return errorResponse(err, deps.log);
    }
  });
}
