/**
 * The bad-input catalogue for MQTT, as data: raw packets over TCP (malformed framing, protocol
 * violations, bad CONNECTs) and well-formed publishes with bad payloads or routes. Each case says
 * what is sent and what the embedded broker must do. `tests/catalogue/mqtt_runner.ts` runs them.
 */
import type { ErrorCode } from "../../core/errors.ts";
import { type ConnectFields, connectPacket, packet, publishPacket, str, varint } from "../helpers/mqtt_raw.ts";
import { badInvokeShapes, badJson, DEEP_JSON, HUGE_NUMBER_JSON } from "./http_cases.ts";

/** The credentials a case's bytes may use. */
export interface MqttCaseContext {
  readonly victim: { readonly id: string; readonly token: string };
  readonly other: { readonly id: string; readonly token: string };
  readonly admin: string;
}

/** What the broker must do with a case. */
export type MqttExpect =
  /**
   * Close the connection without acknowledging anything (a protocol error); `connack` when a
   * CONNACK with that return code must come first.
   */
  | { readonly kind: "closed"; readonly connack?: number }
  /** A route the session may not use: disconnected without PUBACK, counted as forbidden. */
  | { readonly kind: "disconnect"; readonly connack?: number }
  /**
   * Recorded at /admin/refused with `code`, acknowledged as its QoS asks (PUBACK for 1, PUBREC for
   * 2, nothing for 0) so the device does not resend it, and the connection stays up.
   */
  | { readonly kind: "refused"; readonly code: ErrorCode; readonly qos?: 0 | 1 | 2 }
  /** SUBACK with the failure return code 0x80; the connection stays up. */
  | { readonly kind: "suback-failure"; readonly code: ErrorCode }
  /** CONNACK 0, then the client drops the connection: its will must end as `outcome`, nothing written. */
  | { readonly kind: "will"; readonly outcome: "forbidden" | ErrorCode };

export interface MqttCase {
  readonly name: string;
  /**
   * `first`: the bytes are the first thing sent on a new connection. `session`: they follow a
   * CONNECT of the victim device (or the admin) answered with CONNACK 0.
   */
  readonly when: "first" | "session";
  readonly as?: "victim" | "admin";
  readonly bytes: (t: MqttCaseContext) => readonly number[];
  readonly expect: MqttExpect;
  /** Ended only by a timer (connect timeout, keep-alive): started first, checked at the end. */
  readonly slow?: boolean;
}

const VALID = JSON.stringify({ method: "blog/queues/processor", params: { data: "20,1,45:-73,2026-11-25T10:00:00Z" } });
const INVOKE = "blog_queuing/invoke";
const encoder = new TextEncoder();
const bytesOf = (s: string) => [...encoder.encode(s)];
/** An invalid UTF-8 sequence (a lead byte followed by a non-continuation byte). */
const BAD_UTF8 = [0xc3, 0x28];
const victimConnect = (t: MqttCaseContext, f: ConnectFields = {}) =>
  connectPacket({ username: t.victim.id, password: t.victim.token, ...f });
const closed: MqttExpect = { kind: "closed" };
const disconnect: MqttExpect = { kind: "disconnect" };
const refused = (code: ErrorCode, qos?: 0 | 1 | 2): MqttExpect => ({
  kind: "refused",
  code,
  ...(qos === undefined ? {} : { qos }),
});

/** Bad framing and protocol violations before or instead of a proper CONNECT. */
const beforeConnect: MqttCase[] = [
  { name: "PUBLISH as the first packet", when: "first", bytes: () => publishPacket(INVOKE, VALID), expect: closed },
  {
    name: "SUBSCRIBE as the first packet",
    when: "first",
    bytes: () => packet(0x82, [0, 1, ...str("a/messages"), 0]),
    expect: closed,
  },
  { name: "PINGREQ as the first packet", when: "first", bytes: () => [0xc0, 0], expect: closed },
  { name: "DISCONNECT as the first packet", when: "first", bytes: () => [0xe0, 0], expect: closed },
  { name: "PUBACK as the first packet", when: "first", bytes: () => [0x40, 2, 0, 1], expect: closed },
  { name: "reserved packet type 0", when: "first", bytes: () => [0x00, 0], expect: closed },
  { name: "AUTH (MQTT 5 only) as the first packet", when: "first", bytes: () => [0xf0, 0], expect: closed },
  {
    name: "CONNECT with reserved header flags set",
    when: "first",
    bytes: (t) => [0x11, ...victimConnect(t).slice(1)],
    expect: closed,
  },
  { name: 'protocol name "MQTX"', when: "first", bytes: (t) => victimConnect(t, { protocol: "MQTX" }), expect: closed },
  {
    name: 'protocol name "mqtt" in lower case',
    when: "first",
    bytes: (t) => victimConnect(t, { protocol: "mqtt" }),
    expect: closed,
  },
  { name: "empty protocol name", when: "first", bytes: (t) => victimConnect(t, { protocol: "" }), expect: closed },
  { name: "protocol level 0", when: "first", bytes: (t) => victimConnect(t, { level: 0 }), expect: closed },
  { name: "protocol level 9", when: "first", bytes: (t) => victimConnect(t, { level: 9 }), expect: closed },
  { name: "protocol level 255", when: "first", bytes: (t) => victimConnect(t, { level: 255 }), expect: closed },
  {
    name: "CONNECT reserved flag (bit 0) set",
    when: "first",
    bytes: (t) => victimConnect(t, { flags: 0xc3 }),
    expect: closed,
  },
  {
    name: "will QoS without the will flag",
    when: "first",
    bytes: (t) => victimConnect(t, { flags: 0xca }),
    expect: closed,
  },
  {
    name: "will retain without the will flag",
    when: "first",
    bytes: (t) => victimConnect(t, { flags: 0xe2 }),
    expect: closed,
  },
  {
    name: "remaining length varint of 5 bytes",
    when: "first",
    bytes: () => [0x10, 0xff, 0xff, 0xff, 0xff, 0x01],
    expect: closed,
  },
  {
    name: "remaining length of 256 MiB announced",
    when: "first",
    bytes: () => [0x10, 0xff, 0xff, 0xff, 0x7f, 0, 4],
    expect: closed,
  },
  {
    name: "CONNECT over the packet size limit",
    when: "first",
    bytes: (t) => victimConnect(t, { password: "p".repeat(5000) }),
    expect: closed,
  },
  {
    name: "CONNECT cut short inside the protocol name",
    when: "first",
    bytes: () => [0x10, 0x02, 0x00, 0x04],
    expect: closed,
  },
  {
    name: "client id length running past the packet",
    when: "first",
    bytes: () => packet(0x10, [...str("MQTT"), 4, 0x02, 0, 60, 0x01, 0x00, 0x61]),
    expect: closed,
  },
  {
    name: "client id that is not UTF-8",
    when: "first",
    bytes: (t) => victimConnect(t, { clientId: [0x61, ...BAD_UTF8] }),
    expect: closed,
  },
  {
    name: "client id with U+0000",
    when: "first",
    bytes: (t) => victimConnect(t, { clientId: "a\u0000b" }),
    expect: closed,
  },
  {
    name: "username that is not UTF-8",
    when: "first",
    bytes: (t) => victimConnect(t, { username: [...bytesOf(t.victim.id), ...BAD_UTF8] }),
    expect: { kind: "closed", connack: 4 },
  },
  {
    name: "password that is not UTF-8",
    when: "first",
    bytes: (t) => victimConnect(t, { password: [...bytesOf(t.victim.token), 0xff] }),
    expect: { kind: "closed", connack: 4 },
  },
  {
    name: "wrong password",
    when: "first",
    bytes: (t) => victimConnect(t, { password: `${t.victim.token}x` }),
    expect: { kind: "closed", connack: 4 },
  },
  {
    name: "another device's token",
    when: "first",
    bytes: (t) => victimConnect(t, { password: t.other.token }),
    expect: { kind: "closed", connack: 4 },
  },
  {
    name: "empty password",
    when: "first",
    bytes: (t) => victimConnect(t, { password: "" }),
    expect: { kind: "closed", connack: 4 },
  },
  {
    name: "password of 300 characters",
    when: "first",
    bytes: (t) => victimConnect(t, { password: "t".repeat(300) }),
    expect: { kind: "closed", connack: 4 },
  },
  {
    name: "password without a username",
    when: "first",
    bytes: (t) => connectPacket({ password: t.victim.token }),
    expect: { kind: "closed", connack: 4 },
  },
  {
    name: "no credentials (anonymous connect is off)",
    when: "first",
    bytes: () => connectPacket({}),
    expect: { kind: "closed", connack: 5 },
  },
  {
    name: "PUBLISH before the CONNACK of a refused CONNECT",
    when: "first",
    bytes: (t) => [...victimConnect(t, { password: "sl_wrong" }), ...publishPacket(INVOKE, VALID)],
    expect: { kind: "closed", connack: 4 },
  },
  {
    name: "PUBLISH on another device's route before the CONNACK",
    when: "first",
    bytes: (t) => [...victimConnect(t), ...publishPacket(`${t.other.token}/${INVOKE}`, VALID)],
    expect: { kind: "disconnect", connack: 0 },
  },
  // Slow-loris: nothing or half a packet, then silence. Only a timer ends these.
  {
    name: "a connection that never sends CONNECT (connect timeout)",
    when: "first",
    bytes: () => [],
    expect: closed,
    slow: true,
  },
  {
    name: "CONNECT whose remaining length is larger than what follows (connect timeout)",
    when: "first",
    bytes: (t) => [0x10, 100, ...victimConnect(t).slice(2, 20)],
    expect: closed,
    slow: true,
  },
  {
    name: "PUBLISH whose remaining length is larger than its body (keep-alive of 1 s)",
    when: "first",
    bytes: (t) => [...victimConnect(t, { keepalive: 1 }), 0x32, 100, ...str(INVOKE), 0, 1, ...bytesOf("{")],
    expect: { kind: "closed", connack: 0 },
    slow: true,
  },
];

/** Protocol violations inside a session. */
const inSession: MqttCase[] = [
  { name: "a second CONNECT", when: "session", bytes: (t) => victimConnect(t), expect: closed },
  { name: "zero-length topic", when: "session", bytes: () => publishPacket("", VALID), expect: closed },
  {
    name: "wildcard # in a PUBLISH topic",
    when: "session",
    bytes: () => publishPacket("blog_queuing/#", VALID),
    expect: closed,
  },
  {
    name: "wildcard + in a PUBLISH topic",
    when: "session",
    bytes: () => publishPacket("+/invoke", VALID),
    expect: closed,
  },
  {
    name: "QoS 3 (both QoS bits set)",
    when: "session",
    bytes: () => publishPacket(INVOKE, VALID, { flags: 0x06 }),
    expect: closed,
  },
  {
    name: "PUBLISH over the packet size limit",
    when: "session",
    bytes: () => publishPacket(INVOKE, "x".repeat(5000)),
    expect: closed,
  },
  {
    name: "topic length running past the packet",
    when: "session",
    bytes: () => packet(0x32, [0x00, 0x40, ...bytesOf("blog_queuing/invoke"), 0, 1]),
    expect: closed,
  },
  {
    name: "remaining length varint of 5 bytes in a session",
    when: "session",
    bytes: () => [0x30, 0x80, 0x80, 0x80, 0x80, 0x01],
    expect: closed,
  },
  { name: "PUBREL with reserved flags cleared", when: "session", bytes: () => [0x60, 2, 0, 1], expect: closed },
  {
    name: "SUBSCRIBE with reserved flags cleared",
    when: "session",
    bytes: () => packet(0x80, [0, 1, ...str("blog_queuing/messages"), 0]),
    expect: closed,
  },
  { name: "SUBSCRIBE without a topic", when: "session", bytes: () => packet(0x82, [0, 1]), expect: closed },
  {
    name: "SUBSCRIBE asking QoS 3",
    when: "session",
    bytes: () => packet(0x82, [0, 1, ...str("blog_queuing/messages"), 3]),
    expect: closed,
  },
  { name: "CONNACK sent by a client", when: "session", bytes: () => [0x20, 2, 0, 0], expect: closed },
  { name: "SUBACK sent by a client", when: "session", bytes: () => [0x90, 3, 0, 1, 0], expect: closed },
  { name: "reserved packet type 15 in a session", when: "session", bytes: () => [0xf0, 0], expect: closed },
  {
    name: "SUBSCRIBE to #",
    when: "session",
    bytes: () => packet(0x82, [0, 2, ...str("#"), 1]),
    expect: { kind: "suback-failure", code: "validation_failed" },
  },
  {
    name: "SUBSCRIBE at the token level",
    when: "session",
    bytes: (t) => packet(0x82, [0, 3, ...str(`${t.victim.token}/blog_queuing/messages`), 1]),
    expect: { kind: "suback-failure", code: "validation_failed" },
  },
  {
    name: "SUBSCRIBE to _pumps as a device",
    when: "session",
    bytes: () => packet(0x82, [0, 4, ...str("_pumps/messages"), 1]),
    expect: { kind: "suback-failure", code: "forbidden" },
  },
  {
    name: "SUBSCRIBE to an unknown channel",
    when: "session",
    bytes: () => packet(0x82, [0, 5, ...str("ghost/messages"), 1]),
    expect: { kind: "suback-failure", code: "not_found" },
  },
];

/** Routes a session may not use: the client is disconnected, nothing is acknowledged. */
const forbiddenRoutes: MqttCase[] = [
  ...[
    ["another device's token", (t: MqttCaseContext) => `${t.other.token}/${INVOKE}`],
    ["_pumps/messages", () => "_pumps/messages"],
    ["_pumps/invoke", () => "_pumps/invoke"],
    ["a _ channel of its own", () => "_mine/invoke"],
    ["four levels", () => "a/b/blog_queuing/invoke"],
    ["one level", () => "invoke"],
    ["an unknown action", () => "blog_queuing/delete"],
    ["$SYS", () => "$SYS/sluice/handled"],
    ["a token-shaped channel name", (t: MqttCaseContext) => `${t.victim.token}/invoke`],
    ["a channel name of 65 characters", () => `${"c".repeat(65)}/invoke`],
    ["an empty token level", () => `/${INVOKE}`],
    ["U+0000 in the topic", () => "blog_queuing/invo\u0000ke"],
  ].map(([what, topic]): MqttCase => ({
    name: `PUBLISH on ${what}`,
    when: "session",
    bytes: (t) => publishPacket((topic as (t: MqttCaseContext) => string)(t), VALID),
    expect: disconnect,
  })),
  {
    name: "PUBLISH topic that is not UTF-8",
    when: "session",
    bytes: () => publishPacket([...bytesOf("blog_queuing/invoke"), ...BAD_UTF8], VALID),
    expect: disconnect,
  },
  {
    name: "PUBLISH channel name that is not UTF-8",
    when: "session",
    bytes: () => publishPacket([...bytesOf("blog_"), 0xff, ...bytesOf("queuing/invoke")], VALID),
    expect: disconnect,
  },
  {
    name: "invoke by an admin session",
    when: "session",
    as: "admin",
    bytes: () => publishPacket(INVOKE, VALID),
    expect: disconnect,
  },
];

/** Well-formed publishes whose payload or route Sluice refuses: recorded, acknowledged, connection kept. */
const refusedPublishes: MqttCase[] = [
  // `plain` has no default script, so text that is not JSON is malformed there.
  ...badJson.map((payload, i): MqttCase => ({
    name: `invoke: malformed JSON #${i + 1}`,
    when: "session",
    bytes: () => publishPacket("plain/invoke", payload),
    expect: refused("malformed_json"),
  })),
  ...badInvokeShapes.map(([what, payload]): MqttCase => ({
    name: `invoke: ${what}`,
    when: "session",
    bytes: () => publishPacket(INVOKE, payload),
    expect: refused("validation_failed"),
  })),
  {
    name: "invoke: empty payload",
    when: "session",
    bytes: () => publishPacket(INVOKE, ""),
    expect: refused("validation_failed"),
  },
  {
    name: "invoke: payload that is not UTF-8",
    when: "session",
    bytes: () => publishPacket(INVOKE, [0x7b, ...BAD_UTF8, 0x7d]),
    expect: refused("malformed_json"),
  },
  {
    name: "invoke: UTF-16 payload",
    when: "session",
    bytes: () => publishPacket(INVOKE, [0xff, 0xfe, 0x7b, 0, 0x7d, 0]),
    expect: refused("malformed_json"),
  },
  {
    name: "invoke: params nested too deep",
    when: "session",
    bytes: () => publishPacket(INVOKE, `{"method":"blog/queues/processor","params":${DEEP_JSON}}`),
    expect: refused("validation_failed"),
  },
  {
    name: "message: nested too deep",
    when: "session",
    bytes: () => publishPacket("blog_queuing/messages", DEEP_JSON),
    expect: refused("validation_failed"),
  },
  {
    name: "invoke: params with a number too large",
    when: "session",
    bytes: () => publishPacket(INVOKE, `{"method":"blog/queues/processor","params":${HUGE_NUMBER_JSON}}`),
    expect: refused("validation_failed"),
  },
  {
    name: "invoke: unknown script",
    when: "session",
    bytes: () => publishPacket(INVOKE, '{"method":"no/such/script"}'),
    expect: refused("not_found"),
  },
  {
    name: "invoke: unknown channel",
    when: "session",
    bytes: () => publishPacket("ghost/invoke", VALID),
    expect: refused("not_found"),
  },
  {
    name: "message: unknown channel",
    when: "session",
    bytes: () => publishPacket("ghost/messages", "{}"),
    expect: refused("not_found"),
  },
  {
    name: "invoke: payload over MAX_BODY_BYTES but under the packet limit",
    when: "session",
    bytes: () => publishPacket(INVOKE, JSON.stringify({ method: "test/echo", params: "x".repeat(1500) })),
    expect: refused("payload_too_large"),
  },
  {
    name: "invoke: bad token in the topic",
    when: "session",
    bytes: () => publishPacket(`sl_${"A".repeat(43)}/${INVOKE}`, VALID),
    expect: refused("unauthorized"),
  },
  {
    name: "invoke: admin token in the topic",
    when: "session",
    bytes: (t) => publishPacket(`${t.admin}/${INVOKE}`, VALID),
    expect: refused("unauthorized"),
  },
  {
    name: "QoS 0 malformed JSON (no PUBACK to hold back)",
    when: "session",
    bytes: () => publishPacket(INVOKE, '{"method":', { qos: 0 }),
    expect: refused("malformed_json", 0),
  },
  {
    name: "QoS 2 malformed JSON (PUBREC, as for QoS 1)",
    when: "session",
    bytes: () => publishPacket(INVOKE, '{"method":', { qos: 2 }),
    expect: refused("malformed_json", 2),
  },
];

/** Wills: published by the broker when the client drops; they pass the same checks as a publish. */
const wills: MqttCase[] = [
  ["a will on another device's route", (t: MqttCaseContext) => `${t.other.token}/${INVOKE}`, VALID, "forbidden"],
  ["a will on _pumps", () => "_pumps/messages", "{}", "forbidden"],
  ["a will with malformed JSON", () => INVOKE, '{"method":', "malformed_json"],
].map(([what, topic, payload, outcome]) => ({
  name: `CONNECT with ${what}, then a dropped connection`,
  when: "first" as const,
  bytes: (t: MqttCaseContext) => willConnect(t, (topic as (t: MqttCaseContext) => string)(t), payload as string),
  expect: { kind: "will" as const, outcome: outcome as "forbidden" | ErrorCode },
}));

function willConnect(t: MqttCaseContext, topic: string, payload: string): number[] {
  const body = [
    ...str("MQTT"),
    4,
    0xc0 | 0x0c | 0x04 | 0x02, // username, password, will QoS 1, will flag, clean session
    0,
    60,
    ...str(`will-${crypto.randomUUID().slice(0, 8)}`),
    ...str(topic),
    ...str(payload),
    ...str(t.victim.id),
    ...str(t.victim.token),
  ];
  return [0x10, ...varint(body.length), ...body];
}

export const mqttCases: readonly MqttCase[] = [
  ...beforeConnect,
  ...inSession,
  ...forbiddenRoutes,
  ...refusedPublishes,
  ...wills,
];
