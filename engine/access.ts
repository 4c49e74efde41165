import type { Principal } from "../core/envelope.ts";
import { ForbiddenError, NotFoundError, UnauthorizedError, ValidationError } from "../core/errors.ts";
import { CHANNEL_NAME, isSystemChannel, PUMPS_CHANNEL } from "../core/names.ts";
import type { ChannelRegistry } from "../store/channel_registry.ts";

/** Throws unless the principal may follow the channel's topic (any protocol). */
export async function authorizeSubscribe(
  channels: Pick<ChannelRegistry, "get">,
  principal: Principal,
  channel: string,
): Promise<void> {
  if (!CHANNEL_NAME.test(channel)) throw new ValidationError(`Invalid channel name "${channel.slice(0, 80)}"`);
  if (isSystemChannel(channel)) {
    if (channel !== PUMPS_CHANNEL) throw new NotFoundError(`Channel "${channel}" does not exist`);
    if (principal.kind !== "admin") throw new ForbiddenError(`Channel "${channel}" needs the admin token`);
    return;
  }
  const config = await channels.get(channel);
  if (!config) throw new NotFoundError(`Channel "${channel}" does not exist`);
  if (principal.kind === "anonymous" && !config.anonymousSubscribe) {
    throw new UnauthorizedError(`Channel "${channel}" does not accept anonymous subscribers`);
  }
}
