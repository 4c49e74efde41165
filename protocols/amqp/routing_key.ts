import { ValidationError } from "../../core/errors.ts";
import { CHANNEL_NAME, looksLikeToken } from "../../core/names.ts";

/** Where an AMQP message goes, read from its routing key and `sluice-token` header. */
export interface Route {
  /** The device token, from the routing key or the header; absent for an anonymous message. */
  readonly token?: string;
  readonly channel: string;
  readonly kind: "invoke" | "message";
}

const KINDS: Record<string, Route["kind"]> = { invoke: "invoke", messages: "message" };
const SHAPE = '"<token>/<channel>/invoke|messages" or "<channel>/invoke|messages"';

/**
 * Parses `<token>/<channel>/invoke|messages`, or `<channel>/invoke|messages` with the token in the
 * `sluice-token` header. A token given in both places must be the same. Error messages never quote
 * a token.
 */
export function parseRoute(routingKey: string, headerToken?: string): Route {
  const parts = routingKey.split("/");
  if (parts.length < 2 || parts.length > 3) {
    throw new ValidationError(`Routing key must be ${SHAPE} (it has ${parts.length} segment(s))`);
  }
  const [channel, action] = parts.slice(-2) as [string, string];
  const keyToken = parts.length === 3 ? parts[0]! : undefined;
  const kind = KINDS[action];
  if (!kind) throw new ValidationError(`Routing key ends in "${action.slice(0, 40)}", expected "invoke" or "messages"`);
  if (!CHANNEL_NAME.test(channel)) throw new ValidationError(`Channel name "${channel.slice(0, 80)}" is not valid`);
  // Never a channel name (nor one recorded with the refusal): a token with the channel left out.
  if (looksLikeToken(channel)) throw new ValidationError(`Routing key has a token where its channel goes: ${SHAPE}`);
  if (keyToken === "") throw new ValidationError("Routing key has an empty token segment");
  if (keyToken !== undefined && headerToken !== undefined && keyToken !== headerToken) {
    throw new ValidationError("Token given in the routing key and in the sluice-token header, and they differ");
  }
  const token = keyToken ?? headerToken;
  return token === undefined ? { channel, kind } : { token, channel, kind };
}

/** The key whose messages must be committed in delivery order: the token (one per device). */
export function orderKeyOf(routingKey: string, headerToken?: string): string {
  const parts = routingKey.split("/");
  const token = (parts.length === 3 ? parts[0] : undefined) || headerToken;
  return token ? `t:${token}` : `k:${routingKey}`;
}
