import type { Sluice } from "../../sluice.ts";
import type { Adapter } from "../adapter.ts";
import { principalOf } from "../http/auth.ts";
import { z } from "@hono/zod-openapi";
import { authenticate, errorAnswer, remoteAddress, securityOf, throttled } from "../http/route.ts";
import { errorResponse } from "../http/errors.ts";
import { upgradeWebSocket } from "../http/upgrade.ts";
import { REVOKED, WsSession } from "./session.ts";
import { WaitingBudget } from "./waiting_budget.ts";
import { utf8Over } from "../../core/kv_size.ts";

export interface WsOptions {
  /** A subscriber whose unsent data passes this is cut off. */
  readonly maxBufferBytes?: number;
  /** Most open WebSocket connections. */
  readonly maxConnections?: number;
  /** Most characters of frames waiting to start, across every connection; the one that passes it is closed. */
  readonly maxWaitingChars?: number;
}

/** Default of `maxWaitingChars`: 256 Mi characters. */
export const MAX_WAITING_CHARS_ALL = 256 * 1024 * 1024;

/** `GET /ws`: the scriptr-style JSON protocol over WebSocket. */
export function wsAdapter(sluice: Sluice, options: WsOptions = {}): Adapter {
  const maxBuffer = options.maxBufferBytes ?? 1024 * 1024;
  const maxConnections = options.maxConnections ?? 10_000;
  const maxFrame = sluice.config.MAX_BODY_BYTES + 1024;
  const waiting = new WaitingBudget(options.maxWaitingChars ?? MAX_WAITING_CHARS_ALL);
  const sockets = new Map<WebSocket, WsSession>();
  /** Sessions upgraded but not open yet: a revocation in between must reach them too. */
  const opening = new Set<WsSession>();
  // A revoked device's sessions end at once: nothing more is handled or pushed, and the socket closes.
  const stopRevocations = sluice.devices.onRevoke((id) => {
    for (const session of opening) if (session.device === id) session.dispose();
    for (const [socket, session] of sockets) {
      if (session.device !== id) continue;
      session.dispose();
      socket.close(REVOKED.code, REVOKED.reason);
    }
  });
  // Subscriptions a channel change no longer allows end (a deleted channel, anonymous subscribers refused).
  const stopChanges = sluice.channels.onChange((channel) => {
    for (const session of sockets.values()) {
      session.recheck(channel).catch((err) => sluice.log.warn(`Rechecking WebSocket subscriptions: ${err}`));
    }
  });
  return {
    name: "ws",
    connections: () => sockets.size + opening.size,
    mount(app, deps) {
      app.openAPIRegistry.registerPath({
        method: "get",
        path: "/ws",
        summary: "WebSocket: subscribe, publish and invoke over one connection (JSON frames)",
        description: "Upgrade with the token as ?token= or in a first Authenticate frame. Requests are " +
          '{"id"?, "method", "params"}; replies {"id", "status": "success"|"failure", "result"|"error"}. Methods: ' +
          "Authenticate {token}; Subscribe {channel, from?} (pushes {channel, seq, message}); Unsubscribe {channel}; " +
          "Publish {channel, message, id?} (answers the seq); any other method invokes that script: with " +
          "params.channel it is queued there as POST /channels/:ch/invoke is (answers the taskId), without it a " +
          "public script runs and answers its result. Frames take effect in the order sent; replies may come out " +
          "of order (match them by id). A client that reads nothing for SLOW_CLIENT_TIMEOUT, then passes MAX_SEND_BUFFER_BYTES of unsent data, is closed (1008).",
        tags: ["channels"],
        // Anonymous upgrades are taken: the token may come as ?token= or later in an Authenticate frame.
        security: securityOf("open"),
        request: {
          query: z.object({
            token: z.string().optional().openapi({ description: "The token (a WebSocket cannot set headers)" }),
          }),
        },
        responses: {
          101: { description: "Switching to the WebSocket protocol" },
          400: errorAnswer("A WebSocket upgrade Deno cannot answer (no Sec-WebSocket-Key, no Connection: Upgrade)"),
          401: errorAnswer("A token was given but is not valid"),
          426: errorAnswer("Not a WebSocket upgrade"),
          429: errorAnswer(
            "The device has 100 connections open (WebSocket, SSE and MQTT together), or too many failed tokens from this address",
            true,
          ),
          500: errorAnswer("Internal error"),
          503: errorAnswer("Too many connections"),
        },
      });
      app.get("/ws", async (c) => {
        try {
          if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
            return Response.json(
              { error: { code: "validation_failed", message: "GET /ws needs a WebSocket upgrade" } },
              { status: 426 },
            );
          }
          const principal = await authenticate(c, deps, true);
          // Checked after the await, with nothing awaited until the session counts in `opening`.
          if (sockets.size + opening.size >= maxConnections) {
            return Response.json({ error: { code: "unavailable", message: "Too many connections" } }, { status: 503 });
          }
          const address = remoteAddress(c, deps.trustedProxies);
          const release = sluice.deviceStreams.take(principal);
          let upgraded: Deno.WebSocketUpgrade;
          try {
            upgraded = upgradeWebSocket(c.req.raw, { idleTimeout: 60 });
          } catch (err) {
            release();
            return errorResponse(err);
          }
          const { socket, response } = upgraded;
          const session = new WsSession(
            sluice,
            {
              send: (text) => socket.readyState === WebSocket.OPEN && socket.send(text),
              bufferedAmount: () => socket.bufferedAmount,
              close: (code, reason) => socket.close(code, reason),
            },
            principal,
            maxBuffer,
            (token) => throttled(deps.throttle, address, () => principalOf(token, sluice.admin, sluice.devices)),
            waiting,
            release,
          );
          opening.add(session);
          socket.onopen = () => {
            opening.delete(session);
            if (session.disposed) return socket.close(REVOKED.code, REVOKED.reason);
            sockets.set(socket, session);
          };
          socket.onmessage = (e) => {
            if (typeof e.data !== "string") return socket.close(1003, "Frames must be JSON text");
            if (utf8Over(e.data, maxFrame)) return socket.close(1009, `Frame over ${maxFrame} bytes`);
            session.handle(e.data).catch((err) => {
              // A frame must never end the process: whatever escaped the session ends only this socket.
              sluice.log.error(`WebSocket frame failed: ${err instanceof Error ? err.message : String(err)}`);
              session.dispose();
              socket.close(1011, "Internal error");
            });
          };
          socket.onclose = () => {
            opening.delete(session);
            sockets.delete(socket);
            session.dispose();
          };
          socket.onerror = () => {
            opening.delete(session);
            session.dispose();
          };
          return response;
        } catch (err) {
          return errorResponse(err, deps.log);
        }
      });
    },
    close() {
      stopRevocations();
      stopChanges();
      for (const s of sockets.keys()) s.close(1001, "Sluice is stopping");
      sockets.clear();
      return Promise.resolve();
    },
  };
}
