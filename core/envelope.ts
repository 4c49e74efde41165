/** Who sent a message, after the adapter checked its credentials. */
export type Principal =
  | { readonly kind: "device"; readonly id: string }
  | { readonly kind: "admin" }
  | { readonly kind: "anonymous" };

/** The protocols an envelope can arrive by. */
export type Protocol = "http" | "mqtt" | "amqp" | "ws" | "script";

/** What every protocol adapter turns an incoming message into. */
export interface Envelope {
  readonly principal: Principal;
  readonly channel: string;
  /** `invoke` queues a script (task queue); `message` publishes on the topic. */
  readonly kind: "invoke" | "message";
  /** The payload: parsed JSON, or text where the protocol carries text. */
  readonly body: unknown;
  /** Message id for deduplication (HTTP Idempotency-Key, AMQP messageId, WS params id). */
  readonly id?: string;
  /**
   * The body is text kept because it did not parse as JSON (MQTT, AMQP): where a channel takes no
   * text (no default script), it is refused as malformed JSON rather than as an invalid body.
   */
  readonly unparsedText?: boolean;
  readonly protocol: Protocol;
  readonly receivedAt: number;
  /**
   * Came through a broker that holds the sender's backlog (AMQP, an external MQTT broker): Sluice
   * takes it at its own pace, so the sender's rate limit does not apply (a backlog replayed after a
   * stop arrives faster than it was sent, and was cut: lost over MQTT, dead-lettered over AMQP).
   */
  readonly brokered?: true;
}

/** What ingest answers once the envelope is committed. */
export type IngestResult =
  | { readonly kind: "invoke"; readonly taskId: string; readonly duplicate: boolean }
  | { readonly kind: "message"; readonly seq: number; readonly duplicate: boolean };

/** Device id of a principal, or a stable label for the others. */
export function senderOf(principal: Principal): string {
  return principal.kind === "device" ? principal.id : `_${principal.kind}`;
}
