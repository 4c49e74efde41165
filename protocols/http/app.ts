import { OpenAPIHono } from "@hono/zod-openapi";
import type { Sluice } from "../../sluice.ts";
import { MethodNotAllowedError } from "../../core/errors.ts";
import { type BodyDeadline, NO_DEADLINE } from "./body.ts";
import { docsPage } from "./docs_page.ts";
import { scriptAt } from "../../engine/manifest.ts";
import { errorResponse } from "./errors.ts";
import { methodsAt, noRoute, type RouteDeps } from "./route.ts";
import { adminRoutes } from "./routes/admin.ts";
import { channelRoutes } from "./routes/channels.ts";
import type { Adapter, Check } from "../adapter.ts";
import { healthRoutes } from "./routes/health.ts";
import { pumpRoutes } from "./routes/pumps.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { scriptRoutes } from "./routes/scripts.ts";
import { taskRoutes } from "./routes/tasks.ts";

export interface HttpAppOptions {
  /** Health of the adapters besides KV (mqtt, amqp). */
  readonly checks?: () => Record<string, Check>;
  /** The protocol adapters, whose counters `/metrics` shows. */
  readonly adapters?: () => readonly Pick<Adapter, "name" | "stats" | "connections">[];
  /** How long a request body may take to arrive (none: as long as it takes). */
  readonly bodyDeadline?: BodyDeadline;
  /** Adds routes that must come before the public scripts' catch-all (WebSocket, SSE, dashboard). */
  readonly mount?: (app: OpenAPIHono, deps: RouteDeps) => void;
}

/** The HTTP API: every route defined once with its schema, documented at /openapi.json and /docs. */
export function createHttpApp(sluice: Sluice, options: HttpAppOptions = {}): OpenAPIHono {
  // strict: false — `/channels/x/invoke/` is `/channels/x/invoke`.
  const app = new OpenAPIHono({ strict: false });
  const deps: RouteDeps = {
    admin: sluice.admin,
    devices: sluice.devices,
    maxBodyBytes: sluice.config.MAX_BODY_BYTES,
    bodyDeadline: options.bodyDeadline ?? NO_DEADLINE,
    log: (line) => sluice.log.error(line),
    throttle: sluice.authThrottle,
    refusedAtEdge: (err) => sluice.ingest.refused("http", err),
    trustedProxies: sluice.config.TRUSTED_PROXIES,
  };
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  healthRoutes(app, deps, sluice, options.checks ?? (() => ({})));
  adminRoutes(app, deps, sluice);
  channelRoutes(app, deps, sluice);
  taskRoutes(app, deps, sluice);
  pumpRoutes(app, deps, sluice);
  metricsRoutes(app, deps, sluice, options.adapters ?? (() => []));
  options.mount?.(app, deps);
  app.get("/openapi.json", (c) =>
    c.json(app.getOpenAPIDocument({
      openapi: "3.0.3",
      info: {
        title: "Sluice",
        version: "0.1.0",
        description: 'Event-sourced message platform for IoT back-ends. Errors are `{"error": {"code", "message"}}`. ' +
          "A method a path does not take is answered 405 (`method_not_allowed`) with `Allow` naming those it does.",
      },
    })));
  app.get("/docs", (c) => c.html(docsPage()));
  scriptRoutes(app, deps, sluice);
  app.notFound((c) => {
    const script = scriptAt(sluice.manifest, c.req.path.replace(/^\/+|\/+$/g, ""))?.public;
    const allowed = script ? ["POST"] : methodsAt(app, c.req.path);
    // A path that took the method and still found no route is an odd spelling (`/pumps//`): no such route.
    return errorResponse(
      allowed.length > 0 && !allowed.includes(c.req.method === "HEAD" ? "GET" : c.req.method)
        ? new MethodNotAllowedError(c.req.method, c.req.path, allowed)
        : noRoute(app, c.req.method, c.req.path),
    );
  });
  app.onError((err) => errorResponse(err, deps.log));
  return app;
}
