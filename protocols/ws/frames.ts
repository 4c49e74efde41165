import { z } from "zod";
import { MessageId } from "../../core/invoke_body.ts";
import { CHANNEL_NAME } from "../../core/names.ts";

/** A request's `id`, echoed in its reply: nothing else is (it may be anything the client sent). */
export const FrameId = z.union([z.string().max(200), z.number()]);

/** A request frame: `{id?, method, params}`; `id` only correlates the reply (one that is not a `FrameId` is not
 * echoed, and does not stop the frame). */
export const RequestFrame = z.object({
  id: z.unknown().optional(),
  method: z.string().min(1).max(200),
  params: z.unknown().optional(),
});
export type RequestFrame = z.infer<typeof RequestFrame>;

export const AuthenticateParams = z.object({ token: z.string().min(1).max(256) });
/** A channel name, checked as HTTP checks it in the path. */
const Channel = z.string().regex(CHANNEL_NAME, "must be a channel name (1–64 letters, digits, _ or -)");

export const SubscribeParams = z.object({
  channel: Channel,
  from: z.number().int().min(1).optional(),
});
export const UnsubscribeParams = z.object({ channel: Channel });
export const PublishParams = z.object({
  channel: Channel,
  message: z.unknown(),
  id: MessageId.optional(),
});

/**
 * What a queued invoke's params say besides the script's own: the channel, and the message id
 * (it becomes a KV key, so it is checked here as on every other protocol).
 */
export const QueueParams = z.looseObject({
  channel: Channel,
  id: MessageId.nullable().optional(),
});

/** A reply to a request. */
export type ReplyFrame =
  | { readonly id: unknown; readonly status: "success"; readonly result: unknown }
  | {
    readonly id: unknown;
    readonly status: "failure";
    readonly error: { readonly code: string; readonly message: string };
  };

/** A topic message pushed to a subscriber. */
export interface PushFrame {
  readonly channel: string;
  readonly seq: number;
  readonly message: unknown;
}

/** A subscription Sluice ended: the channel was deleted or no longer accepts this subscriber. */
export interface EndFrame {
  readonly channel: string;
  readonly status: "failure";
  readonly error: { readonly code: string; readonly message: string };
}
