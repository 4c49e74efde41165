/**
 * The bad-input catalogue for AMQP, as data: bodies, routing keys and properties Sluice must
 * refuse. Each refused message is published by Sluice to `iot.dlx` (queue `iot.dead`) with its
 * reason in `sluice-reason` and its code in `sluice-code`, then acked; nothing is processed.
 * `tests/catalogue/amqp_runner.ts` runs them.
 */
import type { ErrorCode } from "../../core/errors.ts";
import { badInvokeShapes, badJson, DEEP_JSON, HUGE_NUMBER_JSON } from "./http_cases.ts";

/** The tokens a case may use. */
export interface AmqpCaseContext {
  readonly victim: string;
  readonly other: string;
  readonly admin: string;
}

/** The properties of a case's message that matter here. */
export interface AmqpCaseProperties {
  readonly headers?: Record<string, unknown>;
  readonly messageId?: string;
  readonly contentType?: string;
}

export interface AmqpCase {
  readonly name: string;
  /** Routing key on exchange `iot`. */
  readonly routingKey: (t: AmqpCaseContext) => string;
  /** Text, or bytes given as an array of numbers (for invalid UTF-8). */
  readonly body: string | readonly number[];
  readonly properties?: (t: AmqpCaseContext) => AmqpCaseProperties;
  /** The `sluice-code` of its copy in `iot.dead`. */
  readonly code: ErrorCode;
}

const VALID = JSON.stringify({ method: "blog/queues/processor", params: { data: "20,1,45:-73,2026-11-25T10:00:00Z" } });
const own = (route: string) => (t: AmqpCaseContext) => `${t.victim}/${route}`;
const INVOKE = own("blog_queuing/invoke");
const JSON_TYPE = () => ({ contentType: "application/json" });

export const amqpCases: readonly AmqpCase[] = [
  // `plain` has no default script; with `application/json` a body must be JSON.
  ...badJson.map((body, i): AmqpCase => ({
    name: `invoke: malformed JSON #${i + 1} (application/json)`,
    routingKey: own("plain/invoke"),
    body,
    properties: JSON_TYPE,
    code: "malformed_json",
  })),
  ...badInvokeShapes.map(([what, body]): AmqpCase => ({
    name: `invoke: ${what}`,
    routingKey: INVOKE,
    body,
    code: "validation_failed",
  })),
  {
    name: "invoke: text on a channel without a default script",
    routingKey: own("plain/invoke"),
    body: "nul",
    code: "malformed_json",
  },
  {
    name: "invoke: CSV text sent as application/json",
    routingKey: INVOKE,
    body: "20,1,45:-73,2026-11-25T10:00:00Z",
    properties: JSON_TYPE,
    code: "malformed_json",
  },
  { name: "invoke: empty body", routingKey: INVOKE, body: "", code: "validation_failed" },
  { name: "invoke: whitespace body", routingKey: INVOKE, body: " \n ", code: "validation_failed" },
  {
    name: "invoke: body that is not UTF-8",
    routingKey: INVOKE,
    body: [0x7b, 0xc3, 0x28, 0x7d],
    code: "malformed_json",
  },
  {
    name: "invoke: lone surrogate bytes",
    routingKey: INVOKE,
    body: [0x22, 0xed, 0xa0, 0x80, 0x22],
    code: "malformed_json",
  },
  {
    name: "invoke: UTF-16 body",
    routingKey: INVOKE,
    body: [0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00],
    code: "malformed_json",
  },
  {
    name: "message: body that is not UTF-8",
    routingKey: own("blog_queuing/messages"),
    body: [0xff, 0xfe, 0xfd],
    code: "malformed_json",
  },
  {
    name: "invoke: body over MAX_BODY_BYTES",
    routingKey: INVOKE,
    body: JSON.stringify({ method: "test/echo", params: "x".repeat(3000) }),
    code: "payload_too_large",
  },
  {
    name: "message: body over MAX_BODY_BYTES",
    routingKey: own("blog_queuing/messages"),
    body: "x".repeat(3000),
    code: "payload_too_large",
  },
  {
    name: "invoke: params nested too deep",
    routingKey: INVOKE,
    body: `{"method":"blog/queues/processor","params":${DEEP_JSON}}`,
    code: "validation_failed",
  },
  {
    name: "message: nested too deep",
    routingKey: own("blog_queuing/messages"),
    body: DEEP_JSON,
    code: "validation_failed",
  },
  {
    name: "message: a number too large",
    routingKey: own("blog_queuing/messages"),
    body: HUGE_NUMBER_JSON,
    code: "validation_failed",
  },
  { name: "invoke: unknown script", routingKey: INVOKE, body: '{"method":"no/such/script"}', code: "not_found" },
  { name: "invoke: unknown channel", routingKey: own("ghost/invoke"), body: VALID, code: "not_found" },
  { name: "message: unknown channel", routingKey: own("ghost/messages"), body: "{}", code: "not_found" },
  {
    name: "invoke: unknown token in the routing key",
    routingKey: () => `sl_${"A".repeat(43)}/blog_queuing/invoke`,
    body: VALID,
    code: "unauthorized",
  },
  {
    name: "invoke: a token of the wrong shape",
    routingKey: () => "nope/blog_queuing/invoke",
    body: VALID,
    code: "unauthorized",
  },
  { name: "invoke: no token at all", routingKey: () => "blog_queuing/invoke", body: VALID, code: "unauthorized" },
  {
    name: "invoke: unknown token in the sluice-token header",
    routingKey: () => "blog_queuing/invoke",
    body: VALID,
    properties: () => ({ headers: { "sluice-token": "sl_nope" } }),
    code: "unauthorized",
  },
  {
    name: "invoke: header and routing key tokens differ",
    routingKey: INVOKE,
    body: VALID,
    properties: (t) => ({ headers: { "sluice-token": t.other } }),
    code: "validation_failed",
  },
  {
    name: "invoke: sluice-token header that is not a string",
    routingKey: () => "blog_queuing/invoke",
    body: VALID,
    properties: () => ({ headers: { "sluice-token": 5 } }),
    code: "validation_failed",
  },
  { name: "invoke: admin token", routingKey: (t) => `${t.admin}/blog_queuing/invoke`, body: VALID, code: "forbidden" },
  { name: "message: _pumps", routingKey: own("_pumps/messages"), body: "{}", code: "forbidden" },
  { name: "invoke: _pumps", routingKey: own("_pumps/invoke"), body: VALID, code: "forbidden" },
  {
    name: "message: anonymous on a closed channel",
    routingKey: () => "blog_queuing/messages",
    body: "{}",
    code: "unauthorized",
  },
  { name: "routing key of one segment", routingKey: () => "invoke", body: VALID, code: "validation_failed" },
  {
    name: "routing key of four segments",
    routingKey: (t) => `${t.victim}/x/blog_queuing/invoke`,
    body: VALID,
    code: "validation_failed",
  },
  {
    name: "routing key with an unknown action",
    routingKey: own("blog_queuing/delete"),
    body: VALID,
    code: "validation_failed",
  },
  {
    name: "routing key with an empty token segment",
    routingKey: () => "/blog_queuing/invoke",
    body: VALID,
    code: "validation_failed",
  },
  {
    name: "routing key with a bad channel name",
    routingKey: own("a.b/invoke"),
    body: VALID,
    code: "validation_failed",
  },
  {
    name: "routing key with a channel name of 65 characters",
    routingKey: own(`${"c".repeat(65)}/invoke`),
    body: VALID,
    code: "validation_failed",
  },
  // The token lands where the channel name goes: refused as such, the reason must not quote it.
  {
    name: "routing key with the token where the channel goes",
    routingKey: (t) => `${t.victim}/invoke`,
    body: VALID,
    code: "validation_failed",
  },
  {
    name: "messageId of 201 characters",
    routingKey: INVOKE,
    body: VALID,
    properties: () => ({ messageId: "m".repeat(201) }),
    code: "validation_failed",
  },
  {
    name: "messageId and body id differ",
    routingKey: INVOKE,
    body: JSON.stringify({ ...JSON.parse(VALID), id: "body-id" }),
    properties: () => ({ messageId: "property-id" }),
    code: "validation_failed",
  },
];
