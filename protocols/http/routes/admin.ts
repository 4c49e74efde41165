import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Sluice } from "../../../sluice.ts";
import { defineRoute, ErrorSchema, type RouteDeps } from "../route.ts";
import {
  Channel,
  ChannelChanges,
  ChannelList,
  ChannelParams,
  ChannelStatsView,
  CreatedDevice,
  DeadLetterList,
  DeadLetterQuery,
  DeadLetterRetry,
  DeletedChannel,
  Device,
  DeviceList,
  DeviceParams,
  ListQuery,
  NewChannel,
  NewDevice,
  NewSubscriber,
  PurgedQueue,
  RefusedList,
  RevokedDevice,
  TaskParams,
} from "../schemas.ts";
import { channelStats } from "../../../engine/channel_stats.ts";
import { scriptAt } from "../../../engine/manifest.ts";
import { NotFoundError } from "../../../core/errors.ts";
import { PUMPS_CHANNEL } from "../../../core/names.ts";

/** Devices, channels, dead letters: the admin token's routes. */
export function adminRoutes(app: OpenAPIHono, deps: RouteDeps, sluice: Sluice): void {
  const tags = ["admin"];
  defineRoute(app, deps, {
    method: "post",
    path: "/admin/devices",
    summary: "Create a device; its token is in this answer only",
    tags,
    access: "admin",
    body: NewDevice,
    responses: {
      201: { description: "Created", schema: CreatedDevice },
      409: { description: "Id taken", schema: ErrorSchema },
    },
  }, async ({ c, body }) => c.json(await sluice.devices.create(body.id), 201));

  defineRoute(app, deps, {
    method: "get",
    path: "/admin/devices",
    summary: "List devices (without tokens), by id, with `next` to page on",
    tags,
    access: "admin",
    query: ListQuery,
    responses: { 200: { description: "Devices", schema: DeviceList } },
  }, async ({ c, query }) => c.json(await sluice.devices.list(query.limit, query.after)));

  defineRoute(app, deps, {
    method: "get",
    path: "/admin/devices/:id",
    summary: "A device (without its token)",
    tags,
    access: "admin",
    params: DeviceParams,
    responses: {
      200: { description: "The device", schema: Device },
      404: { description: "No such device (a revoked one is gone)", schema: ErrorSchema },
    },
  }, async ({ c, params }) => {
    const device = await sluice.devices.get(params.id);
    if (!device) throw new NotFoundError(`Device "${params.id}" does not exist (or was revoked)`);
    return c.json(device);
  });

  defineRoute(app, deps, {
    method: "delete",
    path: "/admin/devices/:id",
    summary: "Revoke a device: its token stops working on every protocol",
    tags,
    access: "admin",
    params: DeviceParams,
    responses: {
      200: { description: "Revoked", schema: RevokedDevice },
      404: { description: "No such device", schema: ErrorSchema },
    },
  }, async ({ c, params }) => {
    await sluice.devices.revoke(params.id);
    return c.json({ id: params.id, revoked: true });
  });

  defineRoute(app, deps, {
    method: "post",
    path: "/admin/channels",
    summary: "Create a channel",
    tags,
    access: "admin",
    body: NewChannel,
    responses: {
      201: { description: "Created", schema: Channel },
      409: {
        description: "Name taken (`conflict`), or the name of a channel deleted with tasks still queued under " +
          "another ordering (`conflict`: create it again with that ordering, or once they are done)",
        schema: ErrorSchema,
      },
    },
  }, async ({ c, body }) => c.json(await sluice.channelAdmin.create(body), 201));

  defineRoute(app, deps, {
    method: "get",
    path: "/admin/channels/:ch",
    summary: "A channel's settings",
    tags,
    access: "admin",
    params: ChannelParams,
    responses: {
      200: { description: "Settings", schema: Channel },
      404: { description: "No such channel", schema: ErrorSchema },
    },
  }, async ({ c, params }) => {
    const channel = await sluice.channels.get(params.ch);
    if (channel) return c.json(channel);
    if (params.ch === PUMPS_CHANNEL) {
      throw new NotFoundError(
        `Channel "${PUMPS_CHANNEL}" belongs to Sluice and has no settings: it carries every pump's new state ` +
          `(follow it at /channels/${PUMPS_CHANNEL}/events; its counts are at /admin/channels/${PUMPS_CHANNEL}/stats)`,
      );
    }
    throw new NotFoundError(`Channel "${params.ch}" does not exist`);
  });

  defineRoute(app, deps, {
    method: "patch",
    path: "/admin/channels/:ch",
    summary: "Change a channel's settings",
    description: "Only the fields given change; `defaultScript: null` removes it. The ordering cannot change " +
      "(queued tasks are partitioned by it). A subscriber script added runs for the messages published from " +
      "then on; one removed stops before its next batch. `paused: true` stops every script of the channel " +
      "before its next batch while messages are still taken; `paused: false` runs what waited.",
    tags,
    access: "admin",
    params: ChannelParams,
    body: ChannelChanges,
    responses: {
      200: { description: "The channel's settings now", schema: Channel },
      400: { description: "Bad field, unknown script, or an ordering change", schema: ErrorSchema },
      403: { description: "A channel of Sluice's own", schema: ErrorSchema },
      404: { description: "No such channel", schema: ErrorSchema },
      409: { description: "Changed by another request meanwhile (`concurrency_conflict`)", schema: ErrorSchema },
    },
  }, async ({ c, params, body }) => c.json(await sluice.channelAdmin.update(params.ch, body)));

  defineRoute(app, deps, {
    method: "delete",
    path: "/admin/channels/:ch",
    summary: "Delete a channel",
    description: "Publishing and queueing on it stop at once and its subscriber scripts before their next " +
      "batch; tasks already queued still run, and its logs stay until they expire. A channel created again " +
      "under the same name continues its topic's seqs.",
    tags,
    access: "admin",
    params: ChannelParams,
    responses: {
      200: { description: "Deleted", schema: DeletedChannel },
      403: { description: "A channel of Sluice's own", schema: ErrorSchema },
      404: { description: "No such channel (or another request deleted it first)", schema: ErrorSchema },
      409: { description: "Changed by another request meanwhile (`concurrency_conflict`)", schema: ErrorSchema },
    },
  }, async ({ c, params }) => {
    await sluice.channelAdmin.delete(params.ch);
    return c.json({ name: params.ch, deleted: true });
  });

  defineRoute(app, deps, {
    method: "get",
    path: "/admin/channels",
    summary: "List channels' settings, by name, with `next` to page on",
    tags,
    access: "admin",
    query: ListQuery,
    responses: { 200: { description: "Channels", schema: ChannelList } },
  }, async ({ c, query }) => c.json(await sluice.channels.page(query.limit, query.after)));

  defineRoute(
    app,
    deps,
    {
      method: "post",
      path: "/admin/channels/:ch/subscribers",
      summary:
        "Add a subscriber script, from a given message on: `from: 1` replays the topic's kept history through it",
      description: "The script runs once per message from `from` (default: the next message published), in order, " +
        "then goes on with new messages, like a script in the channel's `subscribers`. Messages past " +
        "`TOPIC_RETENTION` are gone and skipped. A new version of a script added under a new path, writing its own " +
        "documents, rebuilds its view of the history beside the old one; remove the old one with PATCH.",
      tags,
      access: "admin",
      params: ChannelParams,
      body: NewSubscriber,
      responses: {
        201: {
          description: "Added: the first message it runs, and the topic's head then",
          schema: z.object({ channel: z.string(), script: z.string(), from: z.number().int(), head: z.number().int() }),
        },
        403: { description: "A channel of Sluice's own", schema: ErrorSchema },
        404: { description: "No such channel", schema: ErrorSchema },
        409: { description: "The script subscribes already, or the channel changed meanwhile", schema: ErrorSchema },
      },
    },
    async ({ c, params, body }) => c.json(await sluice.channelAdmin.subscribe(params.ch, body.script, body.from), 201),
  );

  defineRoute(app, deps, {
    method: "get",
    path: "/admin/channels/:ch/stats",
    summary: "A channel's queue depth (queued tasks, partitions, retries), topic length, and how far each " +
      "subscriber script is (done, behind, retrying)",
    tags,
    access: "admin",
    params: ChannelParams,
    responses: {
      200: {
        description: "Stats (`deleted: true` for a channel deleted with tasks still queued, which run)",
        schema: ChannelStatsView,
      },
      404: { description: "No such channel", schema: ErrorSchema },
    },
  }, async ({ c, params }) => {
    const channel = await sluice.channels.get(params.ch);
    const stats = await channelStats(sluice.kv, params.ch, sluice.committer.headOf, channel?.subscribers ?? []);
    if (channel || params.ch === PUMPS_CHANNEL) return c.json(stats);
    // Deleted with tasks queued: they still run, and here is how many are left.
    if (stats.queued > 0) return c.json({ ...stats, deleted: true });
    throw new NotFoundError(`Channel "${params.ch}" does not exist`);
  });

  defineRoute(app, deps, {
    method: "post",
    path: "/admin/channels/:ch/purge",
    summary: "Drop what a paused channel has queued: its tasks, and the messages its subscriber scripts have not run",
    description: "The channel must be paused (`PATCH` it with `paused: true`), so that nothing of it runs " +
      "meanwhile. What comes after the purge waits as usual, to run when the channel is resumed. The tasks dropped " +
      "show as dead and discarded at `GET /tasks/:id`; topic messages stay in the topic for its followers.",
    tags,
    access: "admin",
    params: ChannelParams,
    responses: {
      200: {
        description: "What was dropped, and on how many streams; `busy`: streams left as they were (draining " +
          "still, or held by another instance): purge again",
        schema: PurgedQueue,
      },
      403: { description: "A channel of Sluice's own", schema: ErrorSchema },
      404: { description: "No such channel", schema: ErrorSchema },
      409: { description: "The channel is not paused", schema: ErrorSchema },
    },
  }, async ({ c, params }) => c.json({ channel: params.ch, ...await sluice.channelAdmin.purge(params.ch) }));

  defineRoute(app, deps, {
    method: "get",
    path: "/admin/dead-letters",
    summary: "Tasks that failed every attempt, with the errors of their last 20 attempts",
    description: "By task id; `channel`, `method` and `device` keep those of a channel, script or device.",
    tags,
    access: "admin",
    query: DeadLetterQuery,
    responses: { 200: { description: "Dead letters", schema: DeadLetterList } },
  }, async ({ c, query }) => {
    const { limit, after, ...filter } = query;
    const { deadLetters, next } = await sluice.deadLetters.list(limit, after, filter);
    return c.json({
      next,
      deadLetters: deadLetters.map((d) => ({
        ...d,
        deadAt: new Date(d.deadAt).toISOString(),
        ...(d.receivedAt === undefined ? {} : { receivedAt: new Date(d.receivedAt).toISOString() }),
        errors: d.errors.map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
      })),
    });
  });

  defineRoute(app, deps, {
    method: "post",
    path: "/admin/dead-letters/:id/retry",
    summary: "Queue a dead task again at the tail of its stream, keeping its id",
    tags,
    access: "admin",
    params: TaskParams,
    responses: {
      202: { description: "Queued again", schema: z.object({ taskId: z.string() }) },
      404: { description: "No such dead letter", schema: ErrorSchema },
    },
  }, async ({ c, params }) => {
    const { taskId } = await sluice.deadLetters.retry(params.id);
    return c.json({ taskId }, 202);
  });

  // The bulk retry and the bulk discard take the same body and pick the same dead letters.
  const bulk = (
    action: "retry" | "discard",
    summary: string,
    description: string,
    answer: { readonly status: 200 | 202; readonly count: "retried" | "discarded"; readonly description: string },
  ) =>
    defineRoute(app, deps, {
      method: "post",
      path: `/admin/dead-letters/${action}`,
      summary,
      description,
      tags,
      access: "admin",
      body: DeadLetterRetry,
      responses: {
        [answer.status]: {
          description: answer.description,
          schema: z.object({ [answer.count]: z.number().int(), left: z.number().int(), before: z.string() }),
        },
        404: {
          description: "None matched, and the filter names no channel, script or device there is",
          schema: ErrorSchema,
        },
      },
    }, async ({ c, body }) => {
      const { limit, before, ...filter } = body;
      const matching = { ...filter, before: before === undefined ? undefined : Date.parse(before) };
      const now = sluice.clock.now();
      const { done, left, before: cutoff } = action === "retry"
        ? await sluice.deadLetters.retryMatching(matching, limit, now).then((r) => ({ ...r, done: r.retried }))
        : await sluice.deadLetters.discardMatching(matching, limit, now).then((r) => ({ ...r, done: r.discarded }));
      if (done === 0 && left === 0) await explainNoMatch(sluice, filter);
      return c.json({ [answer.count]: done, left, before: new Date(cutoff).toISOString() }, answer.status);
    });
  bulk(
    "retry",
    "Queue dead tasks again: all of them, or those of a channel, script or device",
    "At most `limit` (1000 unless given, up to 10,000) a call, whole streams first, a stream's in " +
      "the order they were first queued, as background work. `left` counts the matching ones this call did not " +
      "queue: call again, with the `before` this call answered, until it is 0 (tasks that die again meanwhile are " +
      "not taken again).",
    { status: 202, count: "retried", description: "How many were queued again" },
  );
  bulk(
    "discard",
    "Discard dead tasks without running them again: all of them, or those of a channel, script or device",
    "As the bulk retry picks them (`limit` a call, `left`, `before`). They leave the list, and " +
      "`GET /tasks/:id` still shows them dead, with `discarded: true`.",
    { status: 200, count: "discarded", description: "How many were discarded" },
  );

  defineRoute(app, deps, {
    method: "delete",
    path: "/admin/dead-letters/:id",
    summary: "Discard a dead task without running it again",
    tags,
    access: "admin",
    params: TaskParams,
    responses: {
      204: { description: "Discarded" },
      404: { description: "No such dead letter", schema: ErrorSchema },
    },
  }, async ({ c, params }) => {
    await sluice.deadLetters.discard(params.id);
    return c.body(null, 204);
  });

  defineRoute(app, deps, {
    method: "get",
    path: "/admin/refused",
    summary: "Messages refused at the edge (bad JSON, unknown script or channel, bad token in the topic), and " +
      "refused MQTT subscriptions",
    description: "Newest first. At most one record per protocol, device and reason a second; the rest are counted in " +
      "`suppressed`. Kept for 7 days; not retryable.",
    tags,
    access: "admin",
    query: ListQuery,
    responses: { 200: { description: "Refused messages", schema: RefusedList } },
  }, async ({ c, query }) => c.json(await sluice.refused.list(query.limit, query.after)));
}

/**
 * A bulk retry that matched nothing because its filter names no channel, script or device Sluice knows is a 404 that
 * says so: a mistyped name would otherwise read as "no dead letter left". (Dead letters of a deleted channel or
 * device still match, and are retried, by their name.)
 */
async function explainNoMatch(
  sluice: Sluice,
  filter: { readonly channel?: string; readonly method?: string; readonly device?: string },
): Promise<void> {
  const unknown = [
    filter.channel !== undefined && !(await sluice.channels.get(filter.channel)) && `no channel "${filter.channel}"`,
    filter.method !== undefined && !scriptAt(sluice.manifest, filter.method) && `no script "${filter.method}"`,
    filter.device !== undefined && !(await sluice.devices.exists(filter.device)) && `no device "${filter.device}"`,
  ].filter((s) => s !== false);
  if (unknown.length > 0) {
    throw new NotFoundError(`No dead letter matches: there is ${unknown.join(", and ")} (GET /admin/dead-letters)`);
  }
}
