import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Sluice } from "../../../sluice.ts";
import { defineRoute, ErrorSchema, type RouteDeps } from "../route.ts";
import { Accepted, ChannelParams, IdempotencyHeaders, InvokeBody, Published, TopicMessage } from "../schemas.ts";

/** Queue a task, publish a message. */
export function channelRoutes(app: OpenAPIHono, deps: RouteDeps, sluice: Sluice): void {
  const tags = ["channels"];
  defineRoute(app, deps, {
    method: "post",
    path: "/channels/:ch/invoke",
    summary: "Queue a script on a channel; answered once the task is committed",
    description:
      "Send `Idempotency-Key` (or an `id` in the body) to make a resend a no-op that returns the first task id.",
    tags,
    access: "device",
    ingest: true,
    params: ChannelParams,
    headers: IdempotencyHeaders,
    body: InvokeBody,
    responses: {
      202: { description: "Queued", schema: Accepted },
      400: { description: "Malformed body", schema: ErrorSchema },
      404: { description: "Unknown channel or script", schema: ErrorSchema },
      413: { description: "Body over MAX_BODY_BYTES", schema: ErrorSchema },
    },
  }, async ({ c, principal, params, headers, body }) => {
    const result = await sluice.ingest.accept({
      principal,
      channel: params.ch,
      kind: "invoke",
      body,
      id: headers["idempotency-key"],
      protocol: "http",
      receivedAt: sluice.clock.now(),
    });
    if (result.kind !== "invoke") throw new Error("Ingest answered a publish for an invoke");
    return c.json(result.duplicate ? { taskId: result.taskId, duplicate: true } : { taskId: result.taskId }, 202);
  });

  defineRoute(app, deps, {
    method: "post",
    path: "/channels/:ch/messages",
    summary: "Publish a message on a channel's topic; answered once it is committed",
    tags,
    access: "open",
    ingest: true,
    params: ChannelParams,
    headers: IdempotencyHeaders,
    body: TopicMessage,
    responses: {
      202: { description: "Published", schema: Published },
      400: { description: "Empty or malformed body", schema: ErrorSchema },
      401: { description: "Anonymous publish not allowed here, or a token that is not valid", schema: ErrorSchema },
      403: { description: "A channel of Sluice's own (`_pumps`): only Sluice publishes there", schema: ErrorSchema },
      404: { description: "Unknown channel", schema: ErrorSchema },
    },
  }, async ({ c, principal, params, headers, body }) => {
    const result = await sluice.ingest.accept({
      principal,
      channel: params.ch,
      kind: "message",
      body,
      id: headers["idempotency-key"],
      protocol: "http",
      receivedAt: sluice.clock.now(),
    });
    if (result.kind !== "message") throw new Error("Ingest answered an invoke for a publish");
    return c.json(result.duplicate ? { seq: result.seq, duplicate: true } : { seq: result.seq }, 202);
  });
}
