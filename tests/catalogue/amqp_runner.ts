import { Buffer } from "node:buffer";
import type { Options } from "amqplib";
import type { AmqpStats } from "../../protocols/amqp/mod.ts";
import { CODE_HEADER, DEAD_LETTER_QUEUE, INGEST_EXCHANGE, REASON_HEADER } from "../../protocols/amqp/mod.ts";
import type { AmqpClient } from "../helpers/amqp.ts";
import { waitFor } from "../helpers/sluice.ts";
import type { AmqpCase, AmqpCaseContext } from "./amqp_cases.ts";

/** Header the runner puts on each case's message to find its copy in `iot.dead`. */
const CASE_HEADER = "x-catalogue-case";

export interface AmqpTarget {
  readonly client: AmqpClient;
  readonly stats: AmqpStats;
  /** Refusals counted by `<protocol>:<code>` (the refused log's counters). */
  readonly refusedCounts: ReadonlyMap<string, number>;
  readonly context: AmqpCaseContext;
  /** The valid message published right after each case. */
  readonly valid: { readonly routingKey: string; readonly body: string };
}

function publish(client: AmqpClient, routingKey: string, body: Buffer, options: Options.Publish): Promise<void> {
  return new Promise((resolve, reject) => {
    client.ch.publish(INGEST_EXCHANGE, routingKey, body, { persistent: true, ...options }, (err) => {
      if (err) reject(new Error(`publish not confirmed: ${err}`));
      else resolve();
    });
  });
}

/**
 * Publishes every case, each followed by a valid message of the victim, then checks that each
 * case has its copy in `iot.dead` (as sent) with the expected code and a reason that quotes no
 * token, that the refusals were counted, and that every valid message was accepted.
 */
export async function runAmqpCases(
  cases: readonly AmqpCase[],
  t: AmqpTarget,
): Promise<{ wrong: string[]; valid: number }> {
  const wrong: string[] = [];
  const accepted = t.stats.accepted;
  const before = new Map([...t.refusedCounts].filter(([k]) => k.startsWith("amqp:")));
  const sent = new Map<string, { c: AmqpCase; body: Buffer; routingKey: string }>();
  for (const [i, c] of cases.entries()) {
    const props = c.properties?.(t.context) ?? {};
    const body = Buffer.from(typeof c.body === "string" ? new TextEncoder().encode(c.body) : new Uint8Array(c.body));
    const routingKey = c.routingKey(t.context);
    sent.set(String(i), { c, body, routingKey });
    await publish(t.client, routingKey, body, { ...props, headers: { ...props.headers, [CASE_HEADER]: String(i) } });
    await publish(t.client, t.valid.routingKey, Buffer.from(t.valid.body), { messageId: `catalogue-valid-${i}` });
  }
  await waitFor(() => t.stats.accepted >= accepted + cases.length, 30_000, "every valid AMQP message accepted");
  await waitFor(
    async () => (await t.client.count(DEAD_LETTER_QUEUE)) >= cases.length,
    30_000,
    "every case dead-lettered",
  );
  const dead = await t.client.drain(DEAD_LETTER_QUEUE);
  const seen = new Set<string>();
  const tokens = [t.context.victim, t.context.other, t.context.admin];
  for (const m of dead) {
    const headers = m.properties.headers ?? {};
    const id = String(headers[CASE_HEADER]);
    const s = sent.get(id);
    if (!s) {
      wrong.push(`amqp: a message in iot.dead that is no case: ${m.fields.routingKey}`);
      continue;
    }
    seen.add(id);
    const reason = String(headers[REASON_HEADER] ?? "");
    const problems = [
      headers[CODE_HEADER] !== s.c.code && `code ${headers[CODE_HEADER]} (${reason})`,
      reason.trim() === "" && "no sluice-reason",
      tokens.some((token) => reason.includes(token)) && "the reason quotes a token",
      !Buffer.from(m.content).equals(s.body) && "the body was changed",
      m.fields.routingKey !== s.routingKey && "the routing key was changed",
    ].filter(Boolean);
    if (problems.length > 0) wrong.push(`amqp ${s.c.name}: ${problems.join("; ")}`);
  }
  for (const [id, s] of sent) if (!seen.has(id)) wrong.push(`amqp ${s.c.name}: not in iot.dead`);
  if (t.stats.accepted !== accepted + cases.length) {
    wrong.push(`amqp: ${t.stats.accepted - accepted} messages accepted, expected only the ${cases.length} valid ones`);
  }
  const expected = new Map<string, number>();
  for (const c of cases) expected.set(c.code, (expected.get(c.code) ?? 0) + 1);
  for (const [code, n] of expected) {
    const counted = (t.refusedCounts.get(`amqp:${code}`) ?? 0) - (before.get(`amqp:${code}`) ?? 0);
    if (counted !== n) wrong.push(`amqp: ${counted} refusals counted as ${code}, expected ${n}`);
  }
  return { wrong, valid: cases.length };
}
