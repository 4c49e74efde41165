import type { Principal } from "../../core/envelope.ts";
import { isSystemChannel } from "../../core/names.ts";
import type { ChannelConfig } from "../../store/channel_registry.ts";

/**
 * Whether a session may subscribe to a channel's messages: Sluice's own `_` channels only for the
 * admin; other channels when they exist, for anonymous sessions only where the channel allows it.
 */
export async function maySubscribe(
  principal: Principal,
  channel: string,
  channels: { get(name: string): Promise<ChannelConfig | null> },
): Promise<boolean> {
  if (isSystemChannel(channel)) return principal.kind === "admin";
  const config = await channels.get(channel);
  if (!config) return false;
  return principal.kind !== "anonymous" || config.anonymousSubscribe;
}
