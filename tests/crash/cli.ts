/**
 * The flags of `deno task test:crash`, checked before anything starts: `--help`, an unknown flag or a bad
 * number is one line (with the usage), not a stack trace or a run of NaN devices.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** What `--help` prints. */
export const USAGE = `deno task test:crash [--devices N (20)] [--per-device M (300)] [--kills K (10)]
  [--protocols http,mqtt,amqp]
Runs Sluice as a child process while N devices send M readings each over the protocols (AMQP through the
RabbitMQ at 127.0.0.1:5672, started if nothing listens there), kills it with kill -9 at least K times,
and checks in KV that every acknowledged message became exactly one task and one reading, in order.
Exits 1 on any loss, duplicate, reorder or stuck stream.`;

export const PROTOCOLS = ["http", "mqtt", "amqp"] as const;
export type ProtocolName = typeof PROTOCOLS[number];

export interface CrashOptions {
  readonly devices: number;
  readonly perDevice: number;
  readonly kills: number;
  readonly protocols: readonly ProtocolName[];
}

/** The options `args` give, `"help"` for `--help`; throws an Error of one line for anything else. */
export function crashOptions(args: readonly string[]): CrashOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        devices: { type: "string", default: "20" },
        "per-device": { type: "string", default: "300" },
        kills: { type: "string", default: "10" },
        protocols: { type: "string", default: "http,mqtt,amqp" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new Error(err instanceof Error ? err.message : String(err));
  }
  if (values.help) return "help";
  const whole = (flag: string, value: string, min: number) => {
    const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!(n >= min)) throw new Error(`--${flag} must be a whole number ≥ ${min}, got "${value}"`);
    return n;
  };
  const protocols = values.protocols.split(",").map((p) => p.trim()).filter((p) => p !== "").map((name) => {
    if (!(PROTOCOLS as readonly string[]).includes(name)) {
      throw new Error(`--protocols: unknown protocol "${name}" (known: ${PROTOCOLS.join(", ")})`);
    }
    return name as ProtocolName;
  });
  if (protocols.length === 0) throw new Error(`--protocols names none (known: ${PROTOCOLS.join(", ")})`);
  return {
    devices: whole("devices", values.devices, 1),
    perDevice: whole("per-device", values["per-device"], 1),
    kills: whole("kills", values.kills, 0),
    protocols,
  };
}
