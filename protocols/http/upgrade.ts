import { ValidationError } from "../../core/errors.ts";

/**
 * Upgrades a request to a WebSocket, or refuses it with a `ValidationError` when Deno cannot answer its handshake (no
 * `Sec-WebSocket-Key`, no `Connection: Upgrade`): the client's fault, not an internal error.
 */
export function upgradeWebSocket(request: Request, options: Deno.UpgradeWebSocketOptions): Deno.WebSocketUpgrade {
  try {
    return Deno.upgradeWebSocket(request, options);
  } catch (err) {
    throw new ValidationError(`Not a valid WebSocket upgrade: ${err instanceof Error ? err.message : String(err)}`);
  }
}
