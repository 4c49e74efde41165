import type { OpenAPIHono } from "@hono/zod-openapi";
import type { RouteDeps } from "./http/route.ts";

/** Health of one part of Sluice, as `/healthz` reports it. */
export type Check = "ok" | "degraded" | "off";

/** A protocol adapter: it translates its protocol to envelopes and back, nothing more. */
export interface Adapter {
  readonly name: string;
  /** Health of the outside dependency it talks to (a broker); omitted where there is none. */
  health?(): Check;
  /** Its counters (numbers, or records of numbers by key), shown at `/metrics`. */
  readonly stats?: object;
  /** Client connections open to it now (`sluice_connections`); omitted where clients do not connect to Sluice. */
  connections?(): number;
  /** Adds its routes to the HTTP server (WebSocket upgrades, SSE). */
  mount?(app: OpenAPIHono, deps: RouteDeps): void;
  /** Stops taking messages; what is in flight is committed or handed back. */
  close(): Promise<void>;
}
