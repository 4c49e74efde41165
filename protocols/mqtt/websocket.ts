import type { OpenAPIHono } from "@hono/zod-openapi";
import { errorResponse } from "../http/errors.ts";
import { remoteAddress } from "../http/route.ts";
import { ValidationError } from "../../core/errors.ts";
import { type ByteDuplex, duplexOfWebSocket } from "./byte_duplex.ts";

/** The subprotocols MQTT clients offer over WebSocket; the first offered one is chosen. */
const SUBPROTOCOLS = ["mqtt", "mqttv3.1"];

/** Adds `GET /mqtt`: MQTT over WebSocket (how devices reach Sluice on Deno Deploy). */
export function mountMqttWebSocket(
  app: OpenAPIHono,
  maxPacketBytes: number,
  serve: (conn: ByteDuplex) => void,
  /** Reverse proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`). */
  trustedProxies: readonly string[] = [],
): void {
  app.get("/mqtt", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return errorResponse(new ValidationError("/mqtt takes MQTT over WebSocket: connect with ws:// or wss://"));
    }
    // Read before the upgrade: the request's connection info is gone after it.
    const address = remoteAddress(c, trustedProxies);
    const offered = (c.req.header("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim());
    const protocol = offered.find((p) => SUBPROTOCOLS.includes(p));
    const { socket, response } = Deno.upgradeWebSocket(c.req.raw, protocol ? { protocol } : {});
    const conn = duplexOfWebSocket(socket, maxPacketBytes, address);
    socket.addEventListener("open", () => serve(conn), { once: true });
    return response;
  });
}
