import { loadConfig } from "../../config.ts";
import { type Logger, silentLogger } from "../../core/log.ts";
import { startAdapters } from "../../adapters.ts";
import { type Server, startServer } from "../../server.ts";
import { openSluice, type SluiceOptions } from "../../sluice.ts";
import { testManifest } from "../fixtures/manifest.ts";
import { type FakeWeather, fakeWeather } from "./weather.ts";

export const ADMIN = "test-admin-token-0123456789";

/** A Sluice on a free port with its own KV in a temp folder and a fake weather API. */
export interface TestSluice {
  readonly url: string;
  readonly server: Server;
  readonly weather: FakeWeather;
  readonly kvDir: string;
  /** Admin-authenticated fetch helper. */
  admin(path: string, init?: RequestInit): Promise<Response>;
  /** Creates a device, returns its token. */
  device(id: string): Promise<string>;
  /** Stops Sluice (gracefully) and starts it again on the same KV. */
  restart(): Promise<void>;
  /** Stops Sluice, keeps the KV folder. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A Sluice in deploy mode on a KV shared with other instances in this process, as on Deno Deploy (several instances on
 * one local file are one process's: see `lockKvFile`). `env` adds or overrides settings.
 */
export async function deployInstance(
  kv: Deno.Kv,
  kvPath: string,
  env: Record<string, string> = {},
  options: { leaseTtlMs?: number } = {},
): Promise<Server> {
  const config = loadConfig({
    SLUICE_MODE: "deploy",
    KV_PATH: kvPath,
    ADMIN_TOKEN: ADMIN,
    RATE_LIMIT: "off",
    WEATHER_API_URL: "off",
    MQTT_PORT: "off",
    SCRIPT_WORKERS: "1",
    ...env,
  });
  const sluice = await openSluice({
    config,
    kv,
    leaseTtlMs: options.leaseTtlMs,
    manifest: testManifest,
    workerUrl: new URL("../fixtures/worker_entry.ts", import.meta.url),
    log: Deno.env.get("SLUICE_TEST_LOG") ? undefined : silentLogger,
  });
  return await startServer(sluice, { port: 0, hostname: "127.0.0.1", adapters: await startAdapters(sluice) });
}

/** `log`: where Sluice's log lines go (silent unless `SLUICE_TEST_LOG` is set). */
export async function startTestSluice(
  env: Record<string, string> = {},
  kvDir?: string,
  options: { log?: Logger; idleMemory?: SluiceOptions["idleMemory"] } = {},
): Promise<TestSluice> {
  const dir = kvDir ?? await Deno.makeTempDir({ prefix: "sluice-test-" });
  const weather = fakeWeather();
  const start = async () => {
    const config = loadConfig({
      ADMIN_TOKEN: ADMIN,
      KV_PATH: `${dir}/sluice.kv`,
      MQTT_PORT: "off",
      RATE_LIMIT: "off",
      RETRY_BASE_MS: "20",
      WEATHER_API_URL: weather.url,
      SCRIPT_TIMEOUT_MS: "3000", // over the weather API timeout (2 s)
      ...env,
    });
    const sluice = await openSluice({
      config,
      manifest: testManifest,
      workerUrl: new URL("../fixtures/worker_entry.ts", import.meta.url),
      log: options.log ?? (Deno.env.get("SLUICE_TEST_LOG") ? undefined : silentLogger),
      idleMemory: options.idleMemory,
    });
    return await startServer(sluice, { port: 0, hostname: "127.0.0.1", adapters: await startAdapters(sluice) });
  };
  let server = await start();
  let stopped = false;
  const t: TestSluice = {
    get url() {
      return server.url;
    },
    get server() {
      return server;
    },
    weather,
    kvDir: dir,
    admin: (path, init = {}) =>
      fetch(`${server.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${ADMIN}`, ...init.headers },
      }),
    async device(id) {
      const res = await t.admin("/admin/devices", { method: "POST", body: JSON.stringify({ id }) });
      if (res.status !== 201) throw new Error(`Creating device ${id}: ${res.status} ${await res.text()}`);
      return (await res.json()).token;
    },
    async restart() {
      await server.close();
      server = await start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await server.close();
    },
    async close() {
      await t.stop();
      await weather.close();
      if (!kvDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return t;
}

/** A logger that keeps its lines (`warn <message>`, …) for tests that check what Sluice logs. */
export function recordingLogger(): Logger & { readonly lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
    error: (m) => lines.push(`error ${m}`),
  };
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  what = "condition",
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`Timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
}

/** POSTs JSON with a bearer token. */
export function post(url: string, token: string | null, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: "POST",
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json", ...headers },
    body: typeof body === "string" || body instanceof Uint8Array ? body as BodyInit : JSON.stringify(body),
  });
}

/** A Deno.test for integration tests: real servers, so no op/resource sanitizers. */
export function integration(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

/** The wake-up implementations: KV queue with one writer (local), in-process drains with leases (deploy). */
export const MODES = ["local", "deploy"] as const;

/** Runs an integration test once per mode; `env` carries the mode's settings. */
export function inBothModes(name: string, fn: (env: Record<string, string>) => Promise<void>): void {
  for (const mode of MODES) integration(`${name} [${mode}]`, () => fn({ SLUICE_MODE: mode }));
}

/** Holds every message at ingest, before its commit, until `open()`; `hold()` closes the gate again. */
export interface IngestGate {
  /** Messages that reached the gate so far. */
  readonly entered: number;
  open(): void;
  hold(): void;
}

/** Puts a gate in front of the Sluice's ingest (its commits, and so the acknowledgements after them). */
export function gateIngest(s: TestSluice): IngestGate {
  const { ingest } = s.server.sluice;
  let gate = Promise.withResolvers<void>();
  const state = {
    entered: 0,
    open: () => gate.resolve(),
    hold: () => void (gate = Promise.withResolvers<void>()),
  };
  const accept = ingest.accept.bind(ingest);
  (ingest as { accept: typeof accept }).accept = async (e) => {
    state.entered++;
    await gate.promise;
    return await accept(e);
  };
  return state;
}
