import { channelOfTopicStream } from "../../../core/streams.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Sluice } from "../../../sluice.ts";
import { RunNotHappening, taskStatus } from "../../../engine/task_status.ts";
import { NotFoundError } from "../../../core/errors.ts";
import { notOwn, requireOwner } from "../auth.ts";
import { defineRoute, ErrorSchema, type RouteDeps } from "../route.ts";
import { TaskParams, TaskView } from "../schemas.ts";

/** Task status. */
export function taskRoutes(app: OpenAPIHono, deps: RouteDeps, sluice: Sluice): void {
  defineRoute(app, deps, {
    method: "get",
    path: "/tasks/:id",
    summary: "A task's status: queued, running, retrying, done or dead",
    description: "Also a subscriber script's run for a topic message, by the id its dead letter gives (`s.…`).",
    tags: ["tasks"],
    access: "reader",
    params: TaskParams,
    responses: {
      200: { description: "The task", schema: TaskView },
      403: {
        description: "Another device's task, or (to a device token) no task of this device's: the answer does not " +
          "say whether it exists",
        schema: ErrorSchema,
      },
      404: { description: "No such task (to the admin token)", schema: ErrorSchema },
    },
  }, async ({ c, principal, params }) => {
    const view = await statusOf(sluice, params.id).catch((err) => {
      // A device must not learn which other devices' tasks exist: no such task is refused as another's is
      // (a run of its own that will not happen keeps its explanation).
      const own = err instanceof RunNotHappening && principal.kind === "device" && err.device === principal.id;
      if (err instanceof NotFoundError && principal.kind === "device" && !own) throw notOwn("task");
      throw err;
    });
    requireOwner(principal, view.device, "task");
    return c.json(view);
  });
}

function statusOf(sluice: Sluice, id: string) {
  return taskStatus(
    sluice.kv,
    id,
    (s, seq, consumer) => sluice.runner.inBatch(s, seq, consumer),
    (id) => sluice.runner.results.get(id),
    (stream, seq) => sluice.committer.unmoved(stream, seq),
    async (stream, script) =>
      (await sluice.channels.get(channelOfTopicStream(stream)))?.subscribers.includes(script) ?? false,
  );
}
