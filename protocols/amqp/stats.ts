/** Counters of the AMQP adapter since start (for tests, logs and metrics). */
export interface AmqpStats {
  /** Deliveries from `iot.ingest`, and how many of them the broker flagged as redelivered. */
  received: number;
  redelivered: number;
  /** Committed by ingest; `duplicates` were known ids, committed before (a resend or a redelivery). */
  accepted: number;
  duplicates: number;
  /** Refused and published to `iot.dlx`, by error code. */
  deadLettered: Record<string, number>;
  /** Topic messages re-published to `iot.broadcast` and confirmed. */
  republished: number;
  /** Successful connections (1 + reconnects). */
  connections: number;
}

export function newStats(): AmqpStats {
  return { received: 0, redelivered: 0, accepted: 0, duplicates: 0, deadLettered: {}, republished: 0, connections: 0 };
}
