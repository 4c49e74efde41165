import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Sluice } from "../../../sluice.ts";
import { MethodNotAllowedError, NotFoundError } from "../../../core/errors.ts";
import { parseMessageId } from "../../../core/invoke_body.ts";
import { RESERVED_SEGMENTS } from "../../../core/names.ts";
import { requireAccess } from "../auth.ts";
import { readBody } from "../body.ts";
import { scriptAt } from "../../../engine/manifest.ts";
import { errorResponse } from "../errors.ts";
import { authenticate, ErrorSchema, methodsAt, noRoute, type RouteDeps } from "../route.ts";

const errorJson = { "application/json": { schema: ErrorSchema } };

/** `POST /<script path>`: a public script runs inline and answers with what it returns. */
export function scriptRoutes(app: OpenAPIHono, deps: RouteDeps, sluice: Sluice): void {
  for (const [path, entry] of Object.entries(sluice.manifest)) {
    if (!entry.public) continue;
    app.openAPIRegistry.registerPath({
      method: "post",
      path: `/${path}`,
      summary: `Public script ${path}: runs at once and answers with its result`,
      tags: ["scripts"],
      security: [{ bearer: [] }],
      requestBody: {
        content: { "application/json": { schema: { description: "Whatever the script takes (JSON)" } } },
      },
      responses: {
        200: { description: "What the script returned" },
        400: { description: "A body that is not JSON, or that the script refused as invalid", content: errorJson },
        401: { description: "No token, or an unknown or revoked one", content: errorJson },
        403: { description: "Not a device token (a public script runs for a device)", content: errorJson },
        409: {
          description: "A document the script read changed meanwhile (after retries), or a resend whose answer " +
            "was too big to keep",
          content: errorJson,
        },
        413: { description: "A body over MAX_BODY_BYTES", content: errorJson },
        429: { description: "Over the device's RATE_LIMIT", content: errorJson },
        500: {
          description: "The script threw (script_failed), or a write it asked for was refused",
          content: errorJson,
        },
        503: { description: "Sluice is busy or KV refuses writes: try again", content: errorJson },
      },
    });
  }
  app.post("/*", async (c) => {
    /** A call to a public script refused before it ran counts as a refused message (the runner counts the rest). */
    let atEdge = false;
    try {
      const path = c.req.path.replace(/^\/+|\/+$/g, "");
      if (!scriptAt(sluice.manifest, path)?.public) {
        const allowed = methodsAt(app, c.req.path);
        if (allowed.length > 0) throw new MethodNotAllowedError("POST", c.req.path, allowed);
        throw notAScript(app, sluice, path);
      }
      atEdge = true;
      const principal = await authenticate(c, deps, false);
      requireAccess(principal, "device");
      if (principal.kind !== "device") throw new Error("requireAccess let a non-device through");
      const body = await readBody(c.req.raw, deps.maxBodyBytes);
      const id = parseMessageId(c.req.header("idempotency-key"));
      atEdge = false;
      const result = await sluice.inline.callFor("http", path, body, principal.id, sluice.clock.now(), id);
      return c.json(result as Record<string, unknown>, 200);
    } catch (err) {
      if (atEdge) deps.refusedAtEdge?.(err);
      return errorResponse(err, deps.log);
    }
  });
}

/** Why a POST that is no route of Sluice's has no script to run: a script that is not public, or none at all. */
function notAScript(app: OpenAPIHono, sluice: Sluice, path: string): NotFoundError {
  const first = path.split("/")[0] ?? "";
  if ((RESERVED_SEGMENTS as readonly string[]).includes(first)) return noRoute(app, "POST", `/${path}`);
  if (scriptAt(sluice.manifest, path)) {
    return new NotFoundError(
      `Script "${path}" is not public: queue it with POST /channels/<channel>/invoke {"method": "${path}", "params": …}`,
    );
  }
  return new NotFoundError(`No public script at /${path}`);
}
