import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Principal } from "../../core/envelope.ts";
import type { AdminToken } from "../../store/admin_token.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";
import { type Access, principalOf, requireAccess, tokenOf } from "./auth.ts";
import type { AuthThrottle } from "../../core/auth_throttle.ts";
import { NotFoundError, RateLimitedError, UnauthorizedError, ValidationError } from "../../core/errors.ts";
import { type BodyDeadline, readBody } from "./body.ts";
import { validate } from "../../core/validate.ts";
import { errorResponse } from "./errors.ts";

/** What every route needs to authenticate and read its input. */
export interface RouteDeps {
  readonly admin: AdminToken;
  readonly devices: DeviceDirectory;
  readonly maxBodyBytes: number;
  /** How long a request body may take to arrive (`BODY_TIMEOUT`). */
  readonly bodyDeadline: BodyDeadline;
  readonly log: (line: string) => void;
  /** Slows down and then refuses addresses that keep failing to authenticate. */
  readonly throttle?: AuthThrottle;
  /** Told of a message refused before its handler ran (unreadable body, bad token): counted as refused. */
  readonly refusedAtEdge?: (err: unknown) => void;
  /** Reverse proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`). */
  readonly trustedProxies?: readonly string[];
}

type Obj = z.ZodType<Record<string, unknown>>;

/** A route, defined once: its docs, its access rule, the schemas of its input. */
export interface RouteSpec<P extends Obj, Q extends Obj, B extends z.ZodType, H extends Obj = Obj> {
  readonly method: "get" | "post" | "patch" | "delete";
  /** Hono path, e.g. `/admin/devices/:id`. */
  readonly path: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly access: Access;
  /** A route that takes messages in: a refusal before its handler counts as a refused message. */
  readonly ingest?: boolean;
  /** Also take the token from `?token=` (EventSource and WebSocket cannot set headers). */
  readonly queryToken?: boolean;
  readonly params?: P;
  readonly query?: Q;
  /** Request headers the route reads (names in lower case), checked at the edge like the rest. */
  readonly headers?: H;
  readonly body?: B;
  readonly responses: Readonly<Record<number, { readonly description: string; readonly schema?: z.ZodType }>>;
}

/** OpenAPI security of a route: "open" reads a bearer token when one is given (`{}`: none), "anyone" never. */
export function securityOf(access: Access): Record<string, string[]>[] {
  return access === "anyone" ? [] : access === "open" ? [{}, { bearer: [] }] : [{ bearer: [] }];
}

/** The header an Error answer 429 or 503 (but `lease_lost`) carries: asking again after a second may get past. */
export const RETRY_AFTER = {
  "Retry-After": { description: "Seconds to wait before asking again (1)", schema: { type: "integer" as const } },
};

/** An answer with the Error body, for routes registered without `defineRoute`; `retry`: it carries `Retry-After`. */
export function errorAnswer(description: string, retry = false) {
  return {
    description,
    content: { "application/json": { schema: ErrorSchema } },
    ...(retry ? { headers: RETRY_AFTER } : {}),
  };
}

/** A body schema that takes no body (it has a default, or is optional) is an optional request body. */
function bodyRequired(schema: z.ZodType): boolean {
  return !["default", "prefault", "optional"].includes(schema._zod.def.type);
}

/** What a handler gets: parsed, validated input and the caller. */
export interface Call<P extends Obj, Q extends Obj, B extends z.ZodType, H extends Obj = Obj> {
  readonly c: Context;
  readonly principal: Principal;
  readonly params: z.infer<P>;
  readonly query: z.infer<Q>;
  readonly headers: z.infer<H>;
  readonly body: z.infer<B>;
}

/** Registers a route's OpenAPI description and its handler, which sees only valid input. */
export function defineRoute<
  P extends Obj = Obj,
  Q extends Obj = Obj,
  B extends z.ZodType = z.ZodUnknown,
  H extends Obj = Obj,
>(
  app: OpenAPIHono,
  deps: RouteDeps,
  spec: RouteSpec<P, Q, B, H>,
  handler: (call: Call<P, Q, B, H>) => Response | Promise<Response>,
): void {
  app.openAPIRegistry.registerPath({
    method: spec.method,
    path: spec.path.replace(/:(\w+)/g, "{$1}"),
    summary: spec.summary,
    description: spec.description,
    tags: [...spec.tags],
    security: securityOf(spec.access),
    request: {
      ...(spec.params ? { params: spec.params as never } : {}),
      ...(spec.query ? { query: spec.query as never } : {}),
      ...(spec.headers ? { headers: spec.headers as never } : {}),
      ...(spec.body
        ? { body: { content: { "application/json": { schema: spec.body } }, required: bodyRequired(spec.body) } }
        : {}),
    },
    responses: Object.fromEntries(
      Object.entries({ ...edgeErrors(spec), ...spec.responses }).map(([status, r]) => [
        status,
        r.schema === ErrorSchema
          ? errorAnswer(r.description, status === "429" || status === "503")
          : r.schema
          ? { description: r.description, content: { "application/json": { schema: r.schema } } }
          : r,
      ]),
    ),
  });
  app.on(spec.method.toUpperCase(), spec.path, async (c) => {
    let handled = false;
    try {
      const principal: Principal = spec.access === "anyone"
        ? { kind: "anonymous" }
        : await authenticate(c, deps, spec.queryToken ?? false);
      requireAccess(principal, spec.access);
      const params = parse(spec.params, c.req.param(), "path");
      const query = parse(spec.query, spec.query ? singleQuery(c) : {}, "query");
      const headers = parse(spec.headers, spec.headers ? c.req.header() : {}, "header");
      const body = spec.body
        ? parse(spec.body, await readBody(c.req.raw, deps.maxBodyBytes, deps.bodyDeadline), "body")
        : undefined;
      handled = true;
      return await handler({ c, principal, params, query, headers, body } as Call<P, Q, B, H>);
    } catch (err) {
      if (spec.ingest && !handled) deps.refusedAtEdge?.(err);
      return errorResponse(err, deps.log);
    }
  });
}

/** The error answers a route of its kind can give before its handler runs (the spec's own win). */
function edgeErrors(
  spec: RouteSpec<Obj, Obj, z.ZodType, Obj>,
): Record<number, { description: string; schema: z.ZodType }> {
  const out: Record<number, { description: string; schema: z.ZodType }> = {};
  const add = (status: number, description: string) => out[status] = { description, schema: ErrorSchema };
  if (spec.params || spec.query || spec.headers || spec.body || spec.ingest) {
    add(400, "Invalid input (`validation_failed`, `malformed_json`)");
  }
  add(500, "Internal error (`internal`)");
  add(
    503,
    "Unavailable for now: KV refuses writes or Sluice is busy (`unavailable`, see `Retry-After`), or another " +
      "process took this one's KV over (`lease_lost`)",
  );
  if (spec.access === "anyone") return out; // no token is looked at
  add(401, spec.access === "open" ? "A token was given but is not valid" : "No valid token");
  if (spec.access === "admin") add(403, "The token is valid but not the admin's");
  if (spec.access === "device") add(403, "The token is valid but not a device's");
  if (spec.body || spec.ingest) add(413, "Body over the size limit");
  add(
    429,
    spec.ingest
      ? "Over the sender's rate limit, or too many failed authentications from this address (see `Retry-After`)"
      : "Too many failed authentications from this address",
  );
  return out;
}

/**
 * The caller of a request. Failed attempts from one address are answered ever more slowly, and
 * an address that keeps failing is refused (429) without its token being checked.
 */
export async function authenticate(c: Context, deps: RouteDeps, allowQueryToken: boolean): Promise<Principal> {
  return await throttled(
    deps.throttle,
    remoteAddress(c, deps.trustedProxies),
    () => principalOf(tokenOf(c.req.raw, allowQueryToken), deps.admin, deps.devices),
  );
}

/**
 * Runs an authentication for a client at `address` under the throttle: refused (429) without
 * running it while the address is blocked; an `UnauthorizedError` it throws is answered only
 * after the throttle's delay.
 */
export async function throttled<T>(
  throttle: AuthThrottle | undefined,
  address: string,
  check: () => Promise<T>,
): Promise<T> {
  if (throttle?.blocked(address)) {
    throw new RateLimitedError("Too many failed authentications from this address; try again in a minute");
  }
  try {
    return await check();
  } catch (err) {
    if (err instanceof UnauthorizedError && throttle) {
      const delay = throttle.failed(address);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    }
    throw err;
  }
}

/**
 * The client's address: the connection's peer (from Deno.serve's connection info), or, when that
 * peer is one of `trustedProxies`, the address the proxies forwarded (see `forwardedClient`).
 */
export function remoteAddress(c: Context, trustedProxies: readonly string[] = []): string {
  const info = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  const peer = unmapped(info?.remoteAddr?.hostname ?? "unknown");
  if (!trustedProxies.includes(peer)) return peer;
  return forwardedClient(c.req.header("x-forwarded-for"), trustedProxies) ?? peer;
}

/**
 * The client in an `X-Forwarded-For` header that trusted proxies appended to: the last address
 * that is not one of them (a client can write whatever it likes before that; only what the
 * proxies appended is known). Null without one.
 */
export function forwardedClient(header: string | undefined, trustedProxies: readonly string[]): string | null {
  const hops = (header ?? "").split(",").map((h) => unmapped(h.trim())).filter((h) => h !== "");
  for (let i = hops.length - 1; i >= 0; i--) {
    if (!trustedProxies.includes(hops[i]!)) return hops[i]!.slice(0, 64);
  }
  return null;
}

/**
 * An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`, how Deno gives an IPv4 peer on a dual-stack
 * listener such as `HOSTNAME=::`) as its IPv4 address, as TRUSTED_PROXIES holds it; others as given.
 */
function unmapped(address: string): string {
  return /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/i.exec(address)?.[1] ?? address;
}

/** The query's parameters, each given once: a repeated one (`?limit=5&limit=500`) is refused, not half read. */
function singleQuery(c: Context): Record<string, string> {
  for (const [name, values] of Object.entries(c.req.queries())) {
    if (values.length > 1) {
      throw new ValidationError(`Invalid query.${name}: given ${values.length} times; give it once`);
    }
  }
  return c.req.query();
}

function parse<T extends z.ZodType>(schema: T | undefined, value: unknown, where: string): z.infer<T> {
  return schema ? validate(schema, value, where) : value as z.infer<T>;
}

/** The error body every route may answer with. */
export const ErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
}).openapi("Error");

/** The methods the API serves at a concrete path (none: the path is not a route; public scripts aside). */
export function methodsAt(app: OpenAPIHono, path: string): string[] {
  const methods = new Set<string>();
  for (const r of app.routes) {
    if (r.method === "ALL" || r.path === "/*") continue;
    if (routePattern(r.path).test(path)) methods.add(r.method);
  }
  return [...methods];
}

/**
 * A 404 for a path that is no route. It names the routes one level below that take the method
 * (`POST /channels/x` → `/channels/x/invoke` or `/channels/x/messages`): what a request that
 * stopped a level short most likely meant.
 */
export function noRoute(app: OpenAPIHono, method: string, path: string): NotFoundError {
  const below = pathsBelow(app, method, path).map((p) => `${method} ${p}`);
  const hint = below.length === 0
    ? ""
    : ` (did you mean ${below.length === 1 ? below[0] : `${below.slice(0, -1).join(", ")} or ${below.at(-1)}`}?)`;
  return new NotFoundError(`No route ${method} ${path}${hint}`);
}

/** The paths one level below `path` that take `method`. */
function pathsBelow(app: OpenAPIHono, method: string, path: string): string[] {
  const base = path.replace(/\/+$/, "");
  const paths = new Set<string>();
  for (const r of app.routes) {
    if (r.method !== method) continue;
    const cut = r.path.lastIndexOf("/");
    const last = r.path.slice(cut + 1);
    if (cut > 0 && !last.startsWith(":") && routePattern(r.path.slice(0, cut)).test(base)) paths.add(`${base}/${last}`);
  }
  return [...paths];
}

function routePattern(routePath: string): RegExp {
  return new RegExp(`^${routePath.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/:\w+/g, "[^/]+")}/?$`);
}
