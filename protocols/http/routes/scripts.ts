import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Sluice } from "../../../sluice.ts";
import { MethodNotAllowedError, NotFoundError } from "../../../core/errors.ts";
import { parseMessageId } from "../../../core/invoke_body.ts";
import { RESERVED_SEGMENTS } from "../../../core/names.ts";
import { requireAccess } from "../auth.ts";
import { readBody } from "../body.ts";
import { scriptAt } from "../../../engine/manifest.ts";
import { errorResponse } from "../errors.ts";
import { authenticate, errorAnswer, methodsAt, noRoute, type RouteDeps } from "../route.ts";
import { IdempotencyHeaders } from "../schemas.ts";

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
      request: {
        headers: IdempotencyHeaders,
        // Not required: an empty body reaches the script as none, which it may take or refuse (400).
        body: {
          content: {
            "application/json": {
              schema: {
                description: entry.body?.description ??
                  "Whatever the script takes (JSON); an empty body reaches it as none",
                ...(entry.body?.example === undefined ? {} : { example: entry.body.example }),
              },
            },
          },
          required: false,
        },
      },
      responses: {
        200: { description: "What the script returned" },
        400: errorAnswer(
          "An empty body or one that is not JSON, a bad `Idempotency-Key`, or a body the script refused as invalid",
        ),
        401: errorAnswer("No token, or an unknown or revoked one"),
        403: errorAnswer("Not a device token (a public script runs for a device)"),
        409: errorAnswer(
          "A document the script read changed meanwhile (after retries), or a resend whose answer " +
            "was too big to keep",
        ),
        413: errorAnswer("A body over MAX_BODY_BYTES"),
        429: errorAnswer("Over the device's RATE_LIMIT, or too many failed tokens from this address", true),
        500: errorAnswer("The script threw (script_failed), or a write it asked for was refused"),
        503: errorAnswer("Sluice is busy or KV refuses writes: try again", true),
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
      const body = await readBody(c.req.raw, deps.maxBodyBytes, deps.bodyDeadline);
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
  return new NotFoundError(
    `No public script at /${path} (a script runs once it is in scripts/manifest.ts, public: true, and Sluice restarted)`,
  );
}
