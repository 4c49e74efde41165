import { z } from "zod";

const DEFAULT_WEATHER_API = "https://api.open-meteo.com/v1/forecast";

/** `200/s`, `50/m`, `off` (any case) → tokens a second (null = off). */
const Rate = z.string().trim().transform((s, ctx) => {
  if (s.toLowerCase() === "off") return null;
  const m = /^(\d+(?:\.\d+)?)\s*\/\s*(s|sec|m|min)$/.exec(s);
  if (!m || Number(m[1]) === 0) {
    ctx.addIssue({ code: "custom", message: `expected a rate above 0 like "200/s", or "off", got "${s}"` });
    return z.NEVER;
  }
  return Number(m[1]) / (m[2]!.startsWith("m") ? 60 : 1);
});

/** The longest duration a setting takes: 100 years, as long as an event is kept (KV refuses expiries far past it). */
const MAX_DURATION_MS = 36_500 * 86_400_000;

/** `24h`, `30m`, `90s`, `500ms` or a number of ms → ms, above 0 (a window of 0 would keep nothing), at most 36500d. */
const Duration = z.string().trim().transform((s, ctx) => {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(s);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m?.[2] ?? "ms"]!;
  const ms = m ? Math.round(Number(m[1]) * unit) : 0;
  if (ms < 1 || ms > MAX_DURATION_MS) {
    ctx.addIssue({
      code: "custom",
      message: `expected a duration above 0 and at most 36500d (100 years) like "24h", got "${s.slice(0, 40)}"`,
    });
    return z.NEVER;
  }
  return ms;
});

/**
 * A broker's URL: one of `schemes` and a host (`localhost:5672` parses as a URL of scheme
 * "localhost"). A refusal does not quote the value: it may hold a password.
 */
const BrokerUrl = (schemes: readonly string[], example: string) => {
  const names = schemes.map((s) => `${s}://`);
  return z.string().refine((s) => {
    try {
      const u = new URL(s);
      return schemes.includes(u.protocol.slice(0, -1)) && u.hostname !== "";
    } catch {
      return false;
    }
  }, `must be an ${names.slice(0, -1).join(", ")} or ${names.at(-1)} URL, like ${example}`);
};

/** A whole number from `min` to `max` (written in digits: "5s" is not a number of ms). */
const Int = (min: number, max: number) =>
  z.string().trim().transform((s, ctx) => {
    const n = /^-?\d+$/.test(s) ? Number(s) : NaN;
    if (!(n >= min && n <= max)) {
      ctx.addIssue({ code: "custom", message: `expected a whole number from ${min} to ${max}, got "${s}"` });
      return z.NEVER;
    }
    return n;
  });
/** `10.0.0.5,::1`: IP addresses (none: empty), IPv6 ones written as Deno and proxies write them. */
const IpList = z.string().trim().transform((s, ctx) => {
  const list = s.split(",").map((a) => a.trim()).filter((a) => a !== "");
  const canonical = list.map(canonicalIp);
  const bad = list.find((_, i) => canonical[i] === null);
  if (bad !== undefined) {
    ctx.addIssue({ code: "custom", message: `expected IP addresses separated by commas, got "${bad.slice(0, 60)}"` });
    return z.NEVER;
  }
  return canonical as string[];
});
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/**
 * An address as a peer's or X-Forwarded-For's is compared with it (null: not one): an IPv6 one
 * lower-case and shortened (`FE80:0::1` → `fe80::1`), else it could never match; an IPv4-mapped one
 * (`::ffff:127.0.0.1`) as its IPv4 address, which `remoteAddress` compares peers by.
 */
function canonicalIp(a: string): string | null {
  if (IPV4.test(a)) return a;
  if (!a.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(a)) return null;
  let v6;
  try {
    v6 = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  // The URL parser writes ::ffff:127.0.0.1 as ::ffff:7f00:1.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!mapped) return v6;
  const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join(".");
}
const Bool = z.string().trim().transform((s) => s.toLowerCase()).pipe(z.enum(["true", "false", "1", "0", "yes", "no"]))
  .transform((v) => ["true", "1", "yes"].includes(v));
/** A port, or `off` (any case) for none. */
const Port = z.string().trim().transform((s, ctx) => {
  if (s.toLowerCase() === "off") return null;
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!(n <= 65535)) {
    ctx.addIssue({ code: "custom", message: `expected a port from 0 to 65535 (0: any free one) or "off", got "${s}"` });
    return z.NEVER;
  }
  return n;
});

/** A secret clients send as `Authorization: Bearer <token>`: long enough to guess, and what a header can carry. */
const BearerToken = z.string().min(16, "must be at least 16 characters").max(256, "must be at most 256 characters")
  .regex(/^[\x21-\x7e]+$/, "must be letters, digits and punctuation without spaces (it is sent as a Bearer token)");

/** Every setting Sluice reads from the environment, with its default. */
export const ConfigSchema = z.object({
  PORT: Int(0, 65535).default(8000),
  HOSTNAME: z.string().default("0.0.0.0"),
  KV_PATH: z.string().min(1).default("data/sluice.kv"),
  ADMIN_TOKEN: BearerToken.optional(),
  MQTT_PORT: Port.default(1883),
  MQTT_URL: BrokerUrl(["mqtt", "mqtts", "ws", "wss"], "mqtt://user:password@host:1883").optional(),
  MQTT_TLS_CERT: z.string().optional(),
  MQTT_TLS_KEY: z.string().optional(),
  MQTT_ANONYMOUS_CONNECT: Bool.default(false),
  MQTT_MAX_QUEUED: Int(1, 1_000_000).default(1000),
  AMQP_URL: BrokerUrl(["amqp", "amqps"], "amqp://user:password@host:5672").optional(),
  WEATHER_API_URL: z.union([
    z.literal("off").transform(() => null),
    z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL, or "off"' }),
  ], { message: 'must be an http:// or https:// URL, or "off"' }).default(DEFAULT_WEATHER_API),
  MAX_BODY_BYTES: Int(256, 60 * 1024).default(49152),
  SCRIPT_TIMEOUT_MS: Int(10, 600_000).default(5000),
  MAX_ATTEMPTS: Int(1, 100).default(5),
  MAX_CHAIN_WORK: Int(1, 10_000_000).default(10_000),
  RETRY_BASE_MS: Int(1, 3_600_000).default(1000),
  DEDUP_WINDOW: Duration.default(24 * 3_600_000),
  TOPIC_RETENTION: Duration.default(7 * 24 * 3_600_000),
  TASK_RETENTION: Duration.refine((ms) => ms >= 3_600_000, {
    message: "must be at least 1h: a task must outlive any outage or backlog, or it is dropped unrun",
  }).optional(),
  PUMPS_RETENTION: Duration.default(3_600_000),
  READING_RETENTION: Duration.refine((ms) => ms >= 3_600_000, {
    message: "must be at least 1h",
  }).optional(),
  MAX_SEND_BUFFER_BYTES: Int(4096, 256 * 1024 * 1024).default(1024 * 1024),
  SLOW_CLIENT_TIMEOUT: Duration.default(60_000),
  MAX_HTTP_IN_FLIGHT: Int(1, 1_000_000).default(10_000),
  BODY_TIMEOUT: Duration.refine((ms) => ms >= 1000, { message: "must be at least 1s" }).default(10_000),
  KV_MIN_FREE_MB: Int(0, 1_000_000).default(64),
  RATE_LIMIT: Rate.default(200),
  METRICS_TOKEN: BearerToken.optional(),
  TRUSTED_PROXIES: IpList.default([]),
  SLUICE_MODE: z.enum(["auto", "local", "deploy"]).default("auto"),
  DENO_DEPLOY: Bool.optional(),
  SCRIPT_WORKERS: Int(0, 64).default(2),
  MEMORY_LIMIT_MB: Int(64, 16_000_000).optional(),
});

/** Sluice's settings, parsed and with defaults applied. */
export type Config = z.infer<typeof ConfigSchema>;

/** The settings `env` gives a value (an empty value counts as unset). */
function presentIn(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k in ConfigSchema.shape && v !== undefined && v !== ""),
  ) as Record<string, string>;
}

function issueLines(error: z.ZodError): string[] {
  return error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
}

/** Reads the settings from an environment; throws one readable error listing every bad value. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = ConfigSchema.safeParse(presentIn(env));
  const lines = parsed.success ? [] : issueLines(parsed.error);
  if (parsed.success && isDeploy(parsed.data) && parsed.data.ADMIN_TOKEN === undefined) {
    // Generated, it would be printed, and on Deno Deploy the output goes to the platform's logs.
    lines.push("  ADMIN_TOKEN: required on Deno Deploy (SLUICE_MODE=deploy or DENO_DEPLOY=true)");
  }
  if (parsed.success && (parsed.data.MQTT_TLS_CERT === undefined) !== (parsed.data.MQTT_TLS_KEY === undefined)) {
    lines.push("  MQTT_TLS_CERT, MQTT_TLS_KEY: mqtts needs both (a certificate and its private key), or neither");
  } else if (parsed.success && parsed.data.MQTT_TLS_CERT !== undefined && parsed.data.MQTT_PORT === null) {
    lines.push("  MQTT_TLS_CERT, MQTT_TLS_KEY: set, but MQTT_PORT is off: there is no MQTT listener to use them");
  }
  if (parsed.success && parsed.data.PORT !== 0 && parsed.data.MQTT_PORT === parsed.data.PORT) {
    lines.push(`  MQTT_PORT: ${parsed.data.PORT} is PORT too: give the MQTT broker a port of its own (or 0, or off)`);
  }
  if (lines.length > 0) throw new Error(`Invalid settings:\n${lines.join("\n")}`);
  return parsed.data!;
}

/** Where Sluice keeps its data: Deno Deploy's managed KV, memory, or a local file. */
export type KvLocation = { readonly kind: "managed" } | { readonly kind: "memory" } | {
  readonly kind: "file";
  /** As given (a relative path is relative to the working folder, as for Sluice). */
  readonly path: string;
};

/** The one rule for where the KV is: managed on Deno Deploy (KV_PATH ignored), else KV_PATH. */
export function kvLocation(config: Pick<Config, "KV_PATH" | "DENO_DEPLOY">): KvLocation {
  if (config.DENO_DEPLOY) return { kind: "managed" };
  if (config.KV_PATH === ":memory:") return { kind: "memory" };
  return { kind: "file", path: config.KV_PATH };
}

/**
 * Where Sluice's KV is, from the settings that say it (KV_PATH, DENO_DEPLOY) only: a tool beside
 * Sluice (the backup) is not stopped by a setting it does not use.
 */
export function loadKvLocation(env: Record<string, string | undefined>): KvLocation {
  const parsed = ConfigSchema.pick({ KV_PATH: true, DENO_DEPLOY: true }).safeParse(presentIn(env));
  if (!parsed.success) throw new Error(`Invalid settings:\n${issueLines(parsed.error).join("\n")}`);
  return kvLocation(parsed.data);
}

/** What `deno task start --help` prints about each setting (the README's table, shorter). */
export const SETTINGS_HELP: readonly (readonly [name: keyof Config, fallback: string, meaning: string])[] = [
  ["PORT", "8000", "HTTP, WebSocket, SSE and MQTT over WebSocket (/mqtt)"],
  ["HOSTNAME", "0.0.0.0", "address to listen on"],
  [
    "KV_PATH",
    "data/sluice.kv",
    "local KV file (:memory: allowed); one process per file: a second one stops at start-up",
  ],
  [
    "ADMIN_TOKEN",
    "generated once",
    "16 to 256 characters; when unset, the first start creates one and prints it once (required on Deploy)",
  ],
  ["WEATHER_API_URL", "Open-Meteo", "weather API of the sample processor; off disables it"],
  ["MAX_BODY_BYTES", "49152", "largest accepted payload (413 above)"],
  ["SCRIPT_TIMEOUT_MS", "5000", "time limit of one script run"],
  ["SCRIPT_WORKERS", "2", "script worker threads; 0 runs scripts in-process"],
  [
    "MEMORY_LIMIT_MB",
    "-",
    "memory over which a script holding its worker without yielding while memory grows is stopped (unset: half of V8's heap limit or of the machine's memory)",
  ],
  ["MAX_ATTEMPTS", "5", "attempts before a task is dead"],
  ["MAX_CHAIN_WORK", "10000", "script runs one sender's message may lead to in all before a loop is assumed"],
  ["RETRY_BASE_MS", "1000", "delay before the second attempt; doubles each time (max 5 min)"],
  ["DEDUP_WINDOW", "24h", "how long a message id / Idempotency-Key is remembered"],
  ["RATE_LIMIT", "200/s", "per-device token bucket (200/s, 600/m, or off); not applied through AMQP or MQTT_URL"],
  ["MAX_SEND_BUFFER_BYTES", "1048576", "unsent data a WebSocket or SSE subscriber may leave behind"],
  ["BODY_TIMEOUT", "10s", "how long an HTTP request body may take to arrive (400 after)"],
  ["SLOW_CLIENT_TIMEOUT", "60s", "how long a subscriber may make no room before Sluice sends on (and cuts it off)"],
  ["MQTT_PORT", "1883", "embedded MQTT broker; 0 = a free port (logged); off = none"],
  ["MQTT_URL", "-", "use this external broker (mqtt://, mqtts://, ws:// or wss://) instead of the embedded one"],
  ["MQTT_TLS_CERT", "-", "PEM certificate chain (path or text): mqtts on MQTT_PORT"],
  ["MQTT_TLS_KEY", "-", "PEM key (path or text)"],
  ["MQTT_ANONYMOUS_CONNECT", "false", "accept a CONNECT without credentials"],
  ["MQTT_MAX_QUEUED", "1000", "messages queued for one kept MQTT session (clean session off); newer ones dropped"],
  ["AMQP_URL", "-", "RabbitMQ to use, amqp:// or amqps:// (AMQP adapter on when set)"],
  ["TOPIC_RETENTION", "7d", "how long topic messages are kept"],
  ["TASK_RETENTION", "-", "how long queued tasks are kept, at least 1h (unset: for good)"],
  ["PUMPS_RETENTION", "1h", "how long the _pumps feed (each pump's state after a change) keeps its messages"],
  [
    "READING_RETENTION",
    "-",
    "how long a pump's history keeps its events, at least 1h (unset: for good); its state still counts them all",
  ],
  ["MAX_HTTP_IN_FLIGHT", "10000", "HTTP requests handled at once; past it, 503 with Retry-After"],
  [
    "KV_MIN_FREE_MB",
    "64",
    "free disk space kept beside the KV file: below it writes are refused (503), leaving room for KV itself; 0 = none",
  ],
  ["METRICS_TOKEN", "-", "when set, GET /metrics needs it (or the admin token)"],
  [
    "TRUSTED_PROXIES",
    "-",
    "reverse proxies' IP addresses (10.0.0.5,::1): from them a client's address is taken from X-Forwarded-For",
  ],
  [
    "SLUICE_MODE",
    "auto",
    "deploy forces Deno Deploy behaviour, on the KV file at KV_PATH (auto: DENO_DEPLOY=true); local forces one process",
  ],
];

/** The text of `deno task start --help`. */
export function settingsHelp(): string {
  const width = Math.max(...SETTINGS_HELP.map(([n]) => n.length));
  const rows = SETTINGS_HELP.map(([name, fallback, meaning]) =>
    `  ${name.padEnd(width)}  ${fallback.padEnd(14)}  ${meaning}`
  );
  return [
    "deno task start: runs Sluice. It takes no arguments; its settings come from environment variables:",
    "",
    `  ${"variable".padEnd(width)}  ${"default".padEnd(14)}  meaning`,
    ...rows,
    "",
    "Durations: 500ms, 90s, 30m, 24h or 7d (a bare number is ms), above 0 and at most 36500d.",
    "Example: PORT=8080 MQTT_PORT=off deno task start. The README has the details.",
  ].join("\n");
}

/** True when running on Deno Deploy (or forced to behave as there). */
export function isDeploy(config: Config): boolean {
  return config.SLUICE_MODE === "deploy" || (config.SLUICE_MODE === "auto" && config.DENO_DEPLOY === true);
}
