import type { OpenAPIHono } from "@hono/zod-openapi";
import { errorResponse } from "../http/errors.ts";
import { errorAnswer, remoteAddress } from "../http/route.ts";
import { ValidationError } from "../../core/errors.ts";
import { type ByteDuplex, duplexOfWebSocket } from "./byte_duplex.ts";
import { upgradeWebSocket } from "../http/upgrade.ts";

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
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/mqtt",
    summary: "MQTT 3.1.1 over WebSocket (subprotocol mqtt), to the embedded broker",
    description: "Username = device id, password = its token. Publish on <channel>/invoke (a task: the payload is " +
      "the invoke body, or a bare CSV reading where the channel has a default script) or <channel>/messages (a " +
      "topic message); subscribe to <channel>/messages. QoS 1 is acknowledged after the commit; a refused message " +
      "is acknowledged too and recorded at GET /admin/refused.",
    tags: ["channels"],
    responses: {
      101: { description: "Switching to the WebSocket protocol" },
      400: errorAnswer("Not a WebSocket upgrade, or one without what the handshake needs (Sec-WebSocket-Key)"),
    },
  });
  app.get("/mqtt", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return errorResponse(new ValidationError("/mqtt takes MQTT over WebSocket: connect with ws:// or wss://"));
    }
    // Read before the upgrade: the request's connection info is gone after it.
    const address = remoteAddress(c, trustedProxies);
    const offered = (c.req.header("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim());
    const protocol = offered.find((p) => SUBPROTOCOLS.includes(p));
    let upgraded: Deno.WebSocketUpgrade;
    try {
      upgraded = upgradeWebSocket(c.req.raw, protocol ? { protocol } : {});
    } catch (err) {
      return errorResponse(err);
    }
    const { socket, response } = upgraded;
    const conn = duplexOfWebSocket(socket, maxPacketBytes, address);
    socket.addEventListener("open", () => serve(conn), { once: true });
    return response;
  });
}
