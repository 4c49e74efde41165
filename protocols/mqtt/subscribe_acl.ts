import type { Principal } from "../../core/envelope.ts";
import { SluiceError, ValidationError } from "../../core/errors.ts";
import { authorizeSubscribe } from "../../engine/access.ts";
import type { ChannelRegistry } from "../../store/channel_registry.ts";

/**
 * Why a session may not subscribe to a channel's messages (null: it may), as every protocol
 * decides it: Sluice's own `_pumps` only for the admin; other channels when they exist, for
 * anonymous sessions only where the channel allows it. `channel` is null for a topic filter that
 * is not `<channel>/messages`.
 */
export async function subscribeRefusal(
  principal: Principal,
  channel: string | null,
  channels: Pick<ChannelRegistry, "get">,
): Promise<SluiceError | null> {
  if (channel === null) {
    return new ValidationError("Only <channel>/messages can be subscribed to (no wildcards, no token in the topic)");
  }
  try {
    await authorizeSubscribe(channels, principal, channel);
    return null;
  } catch (err) {
    if (err instanceof SluiceError) return err;
    throw err;
  }
}
