import { z } from "@hono/zod-openapi";
import { CHANNEL_NAME, DEVICE_ID, DEVICE_ID_RULE, SCRIPT_PATH } from "../../core/names.ts";
import { MessageIdText } from "../../core/invoke_body.ts";
import { MAX_SUBSCRIBERS } from "../../engine/channel_admin.ts";

/** Shared request and response schemas of the HTTP API. */
export const DeviceId = z.string().regex(DEVICE_ID, DEVICE_ID_RULE).openapi({ example: "pump-001" });
export const ChannelName = z.string().regex(CHANNEL_NAME, "must be 1–64 letters, digits, _ or -")
  .openapi({ example: "blog_queuing" });
export const ScriptPath = z.string().regex(SCRIPT_PATH, "must be a script path like blog/queues/processor");

/**
 * A message id in a header: ASCII only. A header value reaches Sluice as bytes, one character each (`ü` sent as UTF-8
 * would read `Ã¼`), so other text could not match the same id given in a body.
 */
const HeaderMessageId = MessageIdText.regex(
  /^[\x20-\x7e]+$/,
  "must be ASCII letters, digits, punctuation or spaces (a header carries bytes, not text): give an id with other characters as the body's id",
);

/** The message id of a route that takes messages; an empty header is none. */
export const IdempotencyHeaders = z.object({
  "idempotency-key": z.string().optional().transform((v) => v || undefined).pipe(HeaderMessageId.optional())
    .openapi({
      description:
        "Message id (1–200 visible ASCII characters or spaces; an empty one is none): a resend with a known one is a no-op",
      minLength: 1,
      maxLength: 200,
    }),
});

export const DeviceParams = z.object({ id: DeviceId });
export const ChannelParams = z.object({ ch: ChannelName });
export const TaskParams = z.object({ id: z.string().min(1).max(400) });

export const NewDevice = z.object({ id: DeviceId }).strict().openapi("NewDevice");
export const CreatedDevice = z.object({ id: z.string(), token: z.string() }).openapi("CreatedDevice");

export const NewChannel = z.object({
  name: ChannelName,
  ordering: z.enum(["device", "channel", "none"]).default("device"),
  anonymousPublish: z.boolean().default(false),
  anonymousSubscribe: z.boolean().default(false),
  subscribers: z.array(ScriptPath).max(MAX_SUBSCRIBERS).default([]).transform((s) => [...new Set(s)]), // each runs once anyway
  defaultScript: ScriptPath.optional(),
}).strict().openapi("NewChannel");

export const ChannelChanges = z.object({
  ordering: z.enum(["device", "channel", "none"]).optional(), // accepted only as it is
  anonymousPublish: z.boolean().optional(),
  anonymousSubscribe: z.boolean().optional(),
  subscribers: z.array(ScriptPath).max(MAX_SUBSCRIBERS).optional(),
  defaultScript: ScriptPath.nullable().optional(),
  paused: z.boolean().optional().openapi({
    description: "true: the channel's scripts stop before their next batch (messages are still taken and queued); " +
      "false: they go on where they stopped",
  }),
}).strict().openapi("ChannelChanges");

/** A subscriber script to add to a channel, from a message on (1: the whole history the topic keeps). */
export const NewSubscriber = z.object({
  script: ScriptPath,
  from: z.number().int().min(1).optional().openapi({
    description: "Seq of the first message it runs; 1 replays every message still kept. Default: the next message",
  }),
}).strict().openapi("NewSubscriber");

/** Which dead letters to queue again; an empty body (or `{}`) means all of them, up to `limit`. */
export const DeadLetterRetry = z.object({
  channel: ChannelName.optional(),
  method: ScriptPath.optional(),
  device: DeviceId.optional(),
  /** Only those dead before this time: a bulk retry's next calls pass the `before` its first one answered. */
  before: z.iso.datetime({ offset: true }).optional(),
  limit: z.number().int().min(1).max(10_000).default(1000),
}).strict().default({ limit: 1000 }).openapi("DeadLetterRetry");

export const InvokeBody = z.unknown().openapi("InvokeBody", {
  description: "`{method, params?, id?}`, `{method, data}` (becomes `params.data`), or for a channel with a " +
    "default script a bare CSV string or an object without `method`.",
  example: {
    method: "blog/queues/processor",
    params: { data: "21.5,1.2,45.50:-73.56,2026-11-25T10:00:00Z" },
    id: "m-1",
  },
});
export const TopicMessage = z.unknown().openapi("TopicMessage", {
  description: "Any JSON value (not empty): published as it is, and delivered to the topic's followers as " +
    "`{channel, seq, message}` and to its subscriber scripts.",
  example: { temperature: 21.5, pressure: 1.2 },
});
export const Accepted = z.object({ taskId: z.string(), duplicate: z.boolean().optional() }).openapi("TaskAccepted");
export const Published = z.object({ seq: z.number().int(), duplicate: z.boolean().optional() }).openapi("Published");

export const TaskView = z.object({
  id: z.string(),
  status: z.enum(["queued", "running", "retrying", "done", "dead"]),
  attempts: z.number().int(),
  method: z.string(),
  device: z.string().nullable(),
  result: z.unknown().optional(),
  error: z.string().optional().openapi({ description: "The last failed attempt's error" }),
  errors: z.array(z.object({
    attempt: z.number().int(),
    at: z.string().openapi({ description: "When it failed (ISO time)" }),
    error: z.string(),
  })).optional().openapi({ description: "A retrying or dead task's failed attempts (the last 20)" }),
  nextAttemptAt: z.string().optional().openapi({ description: "A retrying task's next attempt (ISO time)" }),
  discarded: z.literal(true).optional().openapi({ description: "A dead task the admin discarded" }),
}).openapi("Task");

/** The answers of the admin routes (the refused list and channel stats are not described yet). */
export const Device = z.object({ id: z.string(), createdAt: z.string().openapi({ description: "ISO time" }) })
  .openapi("Device");
export const DeviceList = z.object({
  devices: z.array(Device),
  next: z.string().nullable().openapi({ description: "The `after` of the next page, or null at the end" }),
}).openapi("DeviceList");
export const RevokedDevice = z.object({ id: z.string(), revoked: z.literal(true) }).openapi("RevokedDevice");
export const Channel = z.object({
  name: z.string(),
  ordering: z.enum(["device", "channel", "none"]),
  anonymousPublish: z.boolean(),
  anonymousSubscribe: z.boolean(),
  subscribers: z.array(z.string()),
  defaultScript: z.string().optional(),
  paused: z.boolean().optional().openapi({ description: "true while its scripts are paused (absent: running)" }),
  createdAt: z.string().openapi({ description: "ISO time" }),
}).openapi("Channel");
export const ChannelList = z.object({
  channels: z.array(Channel),
  next: z.string().nullable().openapi({ description: "The `after` of the next page, or null at the end" }),
}).openapi("ChannelList");
export const PurgedQueue = z.object({
  channel: z.string(),
  purged: z.number().int().openapi({ description: "Tasks and subscriber runs dropped" }),
  streams: z.number().int().openapi({ description: "Streams (partitions, subscriber scripts) they were on" }),
  busy: z.number().int().openapi({ description: "Streams left as they were: purge again" }),
}).openapi("PurgedQueue");
export const DeletedChannel = z.object({ name: z.string(), deleted: z.literal(true) }).openapi("DeletedChannel");
export const DeadLetterList = z.object({
  deadLetters: z.array(z.object({
    taskId: z.string(),
    stream: z.string(),
    consumer: z.string(),
    seq: z.number().int().openapi({ description: "Where it died" }),
    firstSeq: z.number().int().optional().openapi({
      description: "Where it was first queued, when it died after a retry from the dead letters",
    }),
    method: z.string(),
    params: z.unknown(),
    device: z.string().nullable(),
    receivedAt: z.string().optional().openapi({ description: "When Sluice received the message (ISO time)" }),
    budget: z.number().int().optional().openapi({
      description: "For work a script made: the script runs it could still lead to, itself included (MAX_CHAIN_WORK)",
    }),
    attempts: z.number().int(),
    errors: z.array(z.object({ attempt: z.number().int(), at: z.string(), error: z.string() })),
    deadAt: z.string().openapi({ description: "ISO time" }),
  })),
  next: z.string().nullable().openapi({ description: "The `after` of the next page, or null at the end" }),
}).openapi("DeadLetterList");

export const ChannelStatsView = z.object({
  channel: z.string(),
  partitions: z.number().int().openapi({ description: "Task partitions (one a device) the channel has" }),
  queued: z.number().int().openapi({ description: "Tasks appended and not yet done or dead" }),
  retrying: z.number().int().openapi({ description: "Partitions waiting for a retry of their head task" }),
  messages: z.number().int().openapi({ description: "Seq of the topic's last message (0: none)" }),
  subscribers: z.array(z.object({
    script: z.string(),
    done: z.number().int().openapi({ description: "Seq of the last message it is done with (run or dead)" }),
    behind: z.number().int().openapi({ description: "Messages it has still to run" }),
    retrying: z.object({
      seq: z.number().int(),
      nextAttemptAt: z.string().openapi({ description: "ISO time" }),
      error: z.string().optional(),
    }).nullable().openapi({ description: "Its next message failed and waits for another attempt" }),
  })),
  deleted: z.literal(true).optional().openapi({
    description: "The channel was deleted while tasks were still queued; they run, and these are the ones left",
  }),
}).openapi("ChannelStats");

export const RefusedList = z.object({
  refused: z.array(z.object({
    at: z.string().openapi({ description: "ISO time" }),
    protocol: z.string().openapi({
      description: "mqtt or amqp (HTTP and WebSocket clients are told of a refusal in their answer instead)",
    }),
    device: z.string().nullable().openapi({ description: "The device it came from, when known" }),
    channel: z.string().optional(),
    code: z.string().openapi({ description: "Error code: malformed_json, not_found, unauthorized …" }),
    reason: z.string(),
    preview: z.string().openapi({ description: "The start of the payload, as text (token-shaped text hidden)" }),
    suppressed: z.number().int().openapi({
      description: "Refusals of the same device and reason in the second before this one, only counted",
    }),
  })),
  next: z.string().nullable().openapi({ description: "The `after` of the next page, or null at the end" }),
}).openapi("RefusedList");

export const PumpQuery = z.object({
  at: z.string().optional().openapi({
    description: "A version number, or an ISO 8601 time (UTC without a zone): the state after the events " +
      "recorded (committed) by then, as the state's `updatedAt` and the events' `at` show them",
  }),
});

const Aggregate = z.object({ min: z.number(), max: z.number(), avg: z.number(), sum: z.number() }).nullable();
const Reading = z.object({
  temperature: z.number(),
  pressure: z.number(),
  coordinates: z.object({ lat: z.number(), lon: z.number() }),
  time: z.string().openapi({ description: "When the device took it, ISO time (UTC)" }),
  outsideTemperature: z.number().optional(),
}).openapi("PumpReading");

export const PumpStateView = z.object({
  id: z.string(),
  version: z.number().int().openapi({ description: "Seq of the last event (0: none yet, at a time before it)" }),
  readings: z.number().int(),
  lastReading: Reading.nullable().openapi({
    description: "The reading with the latest `time` (of two with the same time, the one recorded last)",
  }),
  temperature: Aggregate,
  pressure: Aggregate,
  outsideTemperature: z.number().nullable().openapi({
    description: "From the latest reading that had one, while the later readings are at the same coordinates",
  }),
  outsideTemperatureAt: z.string().nullable().openapi({
    description: "The `time` of the reading that brought `outsideTemperature`",
  }),
  firstSeen: z.string().nullable().openapi({ description: "When the earliest of its readings was received" }),
  lastSeen: z.string().nullable().openapi({ description: "When the latest of its readings was received" }),
  updatedAt: z.string().nullable().openapi({
    description: "When the last event was recorded (committed): `?at=` this time gives this state",
  }),
}).openapi("PumpState");

export const PumpList = z.object({
  pumps: z.array(PumpStateView),
  next: z.string().nullable().openapi({ description: "The `after` of the next page, or null at the end" }),
}).openapi("PumpList");

export const PumpEventPage = z.object({
  events: z.array(z.object({
    seq: z.number().int(),
    type: z.string().openapi({ example: "ReadingRecorded" }),
    data: z.unknown().openapi({ description: "`{reading, receivedAt, taskId?}` for a `ReadingRecorded`" }),
    at: z.string().openapi({ description: "When it was recorded (committed), ISO time" }),
  })),
  next: z.number().int().nullable().openapi({ description: "The `from` of the next page, or null at the end" }),
}).openapi("PumpEvents");
/** A whole number in a query, written in decimal digits (`1e2`, `0x10` or ` 5` are refused, not read as numbers). */
function wholeNumber(min: number, max: number, fallback: number) {
  const rule = `a whole number from ${min} to ${max}, in digits`;
  return z.string().regex(/^\d{1,16}$/, rule).transform(Number).pipe(z.number().min(min, rule).max(max, rule))
    .default(fallback)
    // Documented as what is read, not as the text it comes in.
    .openapi({ type: "integer", minimum: min, maximum: max, default: fallback });
}
export const EventsQuery = z.object({
  from: wholeNumber(1, Number.MAX_SAFE_INTEGER, 1),
  limit: wholeNumber(1, 1000, 100),
});
export const ListQuery = z.object({
  limit: wholeNumber(1, 1000, 100),
  after: z.string().max(200).optional(),
});
/** A page of dead letters, of a channel, script or device when given (every one given must match). */
export const DeadLetterQuery = ListQuery.extend({
  channel: ChannelName.optional(),
  method: ScriptPath.optional(),
  device: DeviceId.optional(),
});
