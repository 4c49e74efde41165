import mqtt from "mqtt";
import type { MqttStats } from "../../protocols/mqtt/mod.ts";
import { CONNACK, connectPacket, PINGREQ, PINGRESP, PUBACK, PUBREC, RawMqtt, SUBACK } from "../helpers/mqtt_raw.ts";
import type { MqttCase, MqttCaseContext } from "./mqtt_cases.ts";

/** What the MQTT cases run against. */
export interface MqttTarget {
  readonly port: number;
  readonly stats: MqttStats;
  /** Refusals counted by `<protocol>:<code>` (the refused log's counters). */
  readonly refusedCounts: ReadonlyMap<string, number>;
  readonly context: MqttCaseContext;
  /** Sends a valid QoS 1 publish for the victim and resolves on its PUBACK. */
  sendValid(): Promise<void>;
}

/** Opens a session for the victim that sends the valid messages between the cases. */
export async function validSender(port: number, t: MqttCaseContext, payload: string): Promise<{
  send(): Promise<void>;
  close(): Promise<void>;
}> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    username: t.victim.id,
    password: t.victim.token,
    clientId: "catalogue-valid",
    reconnectPeriod: 0,
  });
  return {
    send: async () => void await client.publishAsync("blog_queuing/invoke", payload, { qos: 1 }),
    close: () => client.endAsync(true),
  };
}

interface Snapshot {
  readonly accepted: number;
  readonly refused: number;
  readonly forbidden: number;
  readonly counts: Map<string, number>;
}

const snapshot = (t: MqttTarget): Snapshot => ({
  accepted: t.stats.accepted,
  refused: t.stats.refused,
  forbidden: t.stats.forbidden,
  counts: new Map([...t.refusedCounts].filter(([k]) => k.startsWith("mqtt:"))),
});

/** The refusal counters that moved since `before`, as `code +n`. */
function countsMoved(t: MqttTarget, before: Snapshot): string[] {
  const now = snapshot(t).counts;
  return [...now].filter(([k, n]) => n !== (before.counts.get(k) ?? 0)).map(([k, n]) =>
    `${k.slice(5)} +${n - (before.counts.get(k) ?? 0)}`
  );
}

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** Runs one case on a new connection; null when the broker did what the case expects, else what went wrong. */
async function runCase(c: MqttCase, t: MqttTarget, conn: RawMqtt): Promise<string | null> {
  const before = snapshot(t);
  const creds = c.as === "admin"
    ? { username: "admin", password: t.context.admin }
    : { username: t.context.victim.id, password: t.context.victim.token };
  if (c.when === "session") {
    await conn.send(connectPacket(creds));
    const ack = await conn.expect(CONNACK, 10_000);
    if (ack?.body[1] !== 0) return `the session's CONNECT was not accepted`;
  }
  const from = conn.packets.length;
  await conn.send(c.bytes(t.context));
  const got = () => conn.packets.slice(from);
  const e = c.expect;
  const stillServed = async () => {
    await conn.send(PINGREQ);
    return (await conn.expect(PINGRESP, 10_000)) !== null;
  };
  switch (e.kind) {
    case "closed":
    case "disconnect": {
      if (!(await conn.closedWithin(c.slow ? 20_000 : 10_000))) return "the connection is still open";
      const packets = got();
      if (e.connack !== undefined) {
        if (packets[0]?.type !== CONNACK || packets[0].body[1] !== e.connack) {
          return `expected CONNACK ${e.connack}, got ${JSON.stringify(packets.map((p) => p.type))}`;
        }
      } else if (packets.some((p) => p.type === CONNACK)) return "got a CONNACK";
      if (packets.some((p) => p.type === PUBACK || p.type === PUBREC)) return "a publish was acknowledged";
      // A slow case runs alongside others: the shared counters are not its own to check.
      if (c.slow) return null;
      const forbidden = e.kind === "disconnect" ? 1 : 0;
      if (e.kind === "disconnect") await waitUntil(() => t.stats.forbidden > before.forbidden, 5000);
      if (t.stats.forbidden - before.forbidden !== forbidden) {
        return `counted ${t.stats.forbidden - before.forbidden} forbidden, expected ${forbidden}`;
      }
      // A forbidden publish is recorded with its reason before the connection is closed.
      if (forbidden) {
        await waitUntil(() => countsMoved(t, before).length > 0, 5000);
        if (countsMoved(t, before).join() !== "forbidden +1") {
          return `refusals counted: ${countsMoved(t, before).join(", ") || "none"}`;
        }
        return t.stats.accepted !== before.accepted ? "a publish was accepted" : null;
      }
      break;
    }
    case "refused": {
      const qos = e.qos ?? 1;
      const ackType = qos === 1 ? PUBACK : qos === 2 ? PUBREC : null;
      if (ackType !== null && !(await conn.expect(ackType, 10_000))) return `no ${qos === 1 ? "PUBACK" : "PUBREC"}`;
      if (!(await stillServed())) return "the connection was closed";
      await waitUntil(() => t.stats.refused > before.refused, 5000);
      const moved = countsMoved(t, before);
      if (moved.join() !== `${e.code} +1`) return `refusals counted: ${moved.join(", ") || "none"}`;
      break;
    }
    case "suback-failure": {
      const suback = await conn.expect(SUBACK, 10_000);
      if (!suback || suback.body.at(-1) !== 0x80) return `no SUBACK with 0x80: ${suback?.body}`;
      if (!(await stillServed())) return "the connection was closed";
      // The reason is recorded at /admin/refused (SUBACK cannot say it).
      await waitUntil(() => countsMoved(t, before).length > 0, 5000);
      const moved = countsMoved(t, before);
      if (moved.join() !== `${e.code} +1`) return `refusals counted: ${moved.join(", ") || "none"}`;
      break;
    }
    case "will": {
      const ack = await conn.expect(CONNACK, 10_000);
      if (ack?.body[1] !== 0) return "the CONNECT with a will was not accepted";
      conn.close();
      const ended = e.outcome === "forbidden"
        ? await waitUntil(() => t.stats.forbidden > before.forbidden, 5000)
        : await waitUntil(() => t.stats.refused > before.refused, 5000);
      if (!ended) return `the will did not end as ${e.outcome}`;
      if (e.outcome !== "forbidden" && countsMoved(t, before).join() !== `${e.outcome} +1`) {
        return `refusals counted: ${countsMoved(t, before).join(", ")}`;
      }
      break;
    }
  }
  if (t.stats.accepted !== before.accepted) return "a publish was accepted";
  if (e.kind !== "refused" && e.kind !== "will" && e.kind !== "suback-failure" && countsMoved(t, before).length > 0) {
    return `refusals counted: ${countsMoved(t, before).join(", ")}`;
  }
  return null;
}

/**
 * Starts the slow cases (only a timer ends them) so they run alongside everything else; `check`
 * waits for their outcome.
 */
export async function startSlowMqttCases(
  cases: readonly MqttCase[],
  t: MqttTarget,
): Promise<{ check(): Promise<string[]> }> {
  const running = await Promise.all(
    cases.filter((c) => c.slow).map(async (c) => {
      const conn = await RawMqtt.open(t.port);
      return { c, outcome: runCase(c, t, conn).finally(() => conn.close()) };
    }),
  );
  return {
    check: async () =>
      (await Promise.all(running.map(async ({ c, outcome }) => {
        const wrong = await outcome;
        return wrong ? [`mqtt ${c.name}: ${wrong}`] : [];
      }))).flat(),
  };
}

/** Runs the cases that are not slow one after the other, with a valid message after each. */
export async function runMqttCases(
  cases: readonly MqttCase[],
  t: MqttTarget,
): Promise<{ wrong: string[]; valid: number }> {
  const wrong: string[] = [];
  let valid = 0;
  for (const c of cases.filter((c) => !c.slow)) {
    const conn = await RawMqtt.open(t.port);
    try {
      const w = await runCase(c, t, conn);
      if (w) wrong.push(`mqtt ${c.name}: ${w}`);
    } finally {
      conn.close();
    }
    const accepted = t.stats.accepted;
    await t.sendValid();
    if (t.stats.accepted !== accepted + 1) wrong.push(`mqtt ${c.name}: the valid message after it was not accepted`);
    valid++;
  }
  return { wrong, valid };
}
