import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Sluice } from "../../../sluice.ts";
import { ValidationError } from "../../../core/errors.ts";
import { parseIsoTime } from "../../../core/iso_time.ts";
import { requireOwner } from "../auth.ts";
import { defineRoute, ErrorSchema, type RouteDeps } from "../route.ts";
import { DeviceParams, EventsQuery, ListQuery, PumpEventPage, PumpList, PumpQuery, PumpStateView } from "../schemas.ts";

/** Pump state, time travel and history. A device sees only its own pump. */
export function pumpRoutes(app: OpenAPIHono, deps: RouteDeps, sluice: Sluice): void {
  const tags = ["pumps"];
  defineRoute(app, deps, {
    method: "get",
    path: "/pumps",
    summary: "Pumps and their state (a device sees only its own)",
    tags,
    access: "reader",
    query: ListQuery,
    responses: { 200: { description: "Pumps, with `next` to page on", schema: PumpList } },
  }, async ({ c, principal, query }) => {
    const { ids, more } = principal.kind === "device"
      ? await sluice.pumps.ids(1, undefined, principal.id)
      : await sluice.pumps.ids(query.limit, query.after);
    const pumps = await Promise.all(ids.map((id) => sluice.pumps.state(id).catch(() => null)));
    return c.json({ pumps: pumps.filter((p) => p !== null), next: more ? ids.at(-1) : null });
  });

  defineRoute(app, deps, {
    method: "get",
    path: "/pumps/:id",
    summary: "A pump's state; with `at`, as it was at that version or time (time travel)",
    tags,
    access: "reader",
    params: DeviceParams,
    query: PumpQuery,
    responses: {
      200: { description: "State", schema: PumpStateView },
      400: { description: "Invalid id, or `at` neither a version nor an ISO 8601 time", schema: ErrorSchema },
      403: { description: "Another device's pump", schema: ErrorSchema },
      404: {
        description: "No readings for this pump, a version not reached yet, or one older than the kept history",
        schema: ErrorSchema,
      },
    },
  }, async ({ c, principal, params, query }) => {
    requireOwner(principal, params.id, "pump");
    if (query.at === undefined) return c.json(await sluice.pumps.state(params.id));
    return c.json(await sluice.pumps.stateAt(params.id, parseAt(query.at)));
  });

  defineRoute(app, deps, {
    method: "get",
    path: "/pumps/:id/events",
    summary: "A page of a pump's event history",
    tags,
    access: "reader",
    params: DeviceParams,
    query: EventsQuery,
    responses: {
      200: { description: "`{events, next}`", schema: PumpEventPage },
      403: { description: "Another device's pump", schema: ErrorSchema },
      404: { description: "No readings for this pump", schema: ErrorSchema },
    },
  }, async ({ c, principal, params, query }) => {
    requireOwner(principal, params.id, "pump");
    return c.json(await sluice.pumps.events(params.id, query.from, query.limit));
  });
}

/** `at` is a version (a whole number) or an ISO 8601 date or date-time (UTC without a zone). */
function parseAt(at: string): { version: number } | { time: number } {
  if (/^\d+$/.test(at)) {
    const version = Number(at);
    if (!Number.isSafeInteger(version)) {
      throw new ValidationError(`Invalid query.at: version ${at.slice(0, 80)} is over ${Number.MAX_SAFE_INTEGER}`);
    }
    return { version };
  }
  const time = parseIsoTime(at);
  if (time === null) {
    // `+02:00` unencoded in a URL's query arrives as ` 02:00`.
    const plus = / \d{2}(:?\d{2})?$/.test(at) && parseIsoTime(at.replace(/ (\d{2}(:?\d{2})?)$/, "+$1")) !== null;
    throw new ValidationError(
      `Invalid query.at: "${at.slice(0, 80)}" is neither a version nor an ISO 8601 time (e.g. 2026-11-25T10:00:00Z)${
        plus ? ": a + in a URL's query is read as a space, write it %2B" : ""
      }`,
    );
  }
  return { time };
}
