/**
 * Sluice: `deno task start`. Reads the settings from the environment (see config.ts and the
 * README), opens KV, starts the core and the listeners, and stops cleanly on SIGINT/SIGTERM.
 * The same file is the entry point on Deno Deploy.
 */
import { startAdapters } from "./adapters.ts";
import { loadConfig, settingsHelp } from "./config.ts";
import { consoleLogger } from "./core/log.ts";
import { startServer } from "./server.ts";
import { openSluice, type Sluice } from "./sluice.ts";
import { cronSweep, type Started } from "./cron_sweep.ts";
import type { AmqpAdapter } from "./protocols/amqp/adapter.ts";

/** Settles once this instance has started (or could not): what the cron ticks work with. */
const started = Promise.withResolvers<Started | null>();

// Deno Deploy runs crons registered at the top level of the entry module; the mode is checked
// inside. Every minute: resume partitions a stopped instance left behind its head, drain AMQP.
if (typeof Deno.cron === "function") {
  Deno.cron("sluice sweep", "* * * * *", () => cronSweep(started.promise));
}

async function main(): Promise<void> {
  if (Deno.args.length > 0) {
    const help = Deno.args.some((a) => a === "--help" || a === "-h");
    if (!help) console.error(`Unknown argument "${Deno.args[0]}".\n`);
    (help ? console.log : console.error)(settingsHelp());
    Deno.exit(help ? 0 : 2);
  }
  let config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
  // Listened to before anything starts: a stop asked for during start-up waits for it, then stops what started
  // cleanly (a kill then would cut the queued work it resumed and count that against the tasks).
  const stop = stopOnSignals();
  let sluice: Sluice;
  try {
    sluice = await openSluice({ config, onFatal: () => stop.fatal("Memory running away") });
  } catch (err) {
    console.error(`Sluice cannot start: ${err instanceof Error ? err.message : String(err)}`);
    started.resolve(null);
    Deno.exit(1);
  }
  // (A signal while the protocols start waits for them: closing the core under them would fail the start.)
  if (stop.whenAsked(() => sluice.close(), false)) return;
  if (sluice.mode === "deploy") {
    consoleLogger.info(
      "Deploy mode: no KV queues (work is drained by the instance that took it, a cron sweep every minute " +
        "resumes the rest); only HTTP and WebSocket reach this instance (MQTT over WebSocket at /mqtt, " +
        "no MQTT TCP listener); AMQP only as an outbound client",
    );
  }
  let server;
  let stage = "start its protocols";
  try {
    const adapters = await startAdapters(sluice);
    stage = `listen on ${config.HOSTNAME}:${config.PORT} (HOSTNAME, PORT)`;
    server = await startServer(sluice, { port: config.PORT, hostname: config.HOSTNAME, adapters });
  } catch (err) {
    // The admin token this start created was never shown: the next start makes and prints another.
    await sluice.admin.withdraw().catch(() => {});
    started.resolve(null);
    console.error(
      err instanceof Deno.errors.AddrInUse
        ? `Port ${config.PORT} is taken: stop what uses it, or set PORT to a free port (0 for any)`
        : `Sluice cannot ${stage}: ${err instanceof Error ? err.message : String(err)}`,
    );
    Deno.exit(1);
  }
  if (stop.whenAsked(() => server.close())) return;
  const amqp = server.adapters.find((a) => a.name === "amqp") as AmqpAdapter | undefined;
  started.resolve({
    sluice,
    amqp: amqp && { ready: () => amqp.health() === "ok", received: () => amqp.stats.received },
  });
  consoleLogger.info(`Sluice is listening on ${server.url} (KV: ${config.DENO_DEPLOY ? "managed" : config.KV_PATH})`);
  if (sluice.admin.generated) {
    // Printed once, to the terminal only, at the start that created it: written to stdout directly,
    // not through `console`, which OpenTelemetry (OTEL_DENO=true) exports as a log record.
    writeToStdout(
      `\n  Admin token (shown only now, keep it): ${sluice.admin.generated}\n` +
        `  Dashboard: ${server.url}/#token=${sluice.admin.generated}\n\n`,
    );
  }
}

/**
 * SIGINT and SIGTERM stop Sluice, finishing the work in flight, within 5 s of the signal (then it exits anyway). Start-up
 * gives what a stop closes as it goes on (`whenAsked`); a signal before the first waits for it.
 */
function stopOnSignals(): {
  whenAsked(close: () => Promise<void>, later?: boolean): boolean;
  fatal(reason: string): void;
} {
  let asked: string | null = null;
  let close: (() => Promise<void>) | null = null;
  let closing = false;
  /** 1 when Sluice stops itself for a fault (`fatal`). */
  let exitCode = 0;
  const stop = async () => {
    if (closing || close === null || asked === null) return;
    closing = true;
    consoleLogger.info(`${asked}: stopping (finishing work in flight)`);
    await close();
    consoleLogger.info("Stopped");
    Deno.exit(exitCode);
  };
  const onSignal = (signal: string) => {
    if (asked !== null) return consoleLogger.info(`${signal}: already stopping (within 5 s of the first signal)`);
    asked = signal;
    setTimeout(() => {
      consoleLogger.warn("Stop took over 5 s; exiting");
      Deno.exit(1);
    }, 5000);
    if (close) stop();
    else consoleLogger.info(`${signal}: stopping once start-up has got far enough to stop cleanly`);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, () => onSignal(signal));
    } catch {
      // not every platform lets a program listen to every signal
    }
  }
  return {
    /** Stops Sluice as a signal does (the reason was logged), then exits with 1. */
    fatal(reason) {
      exitCode = 1;
      onSignal(reason);
    },
    /**
     * What a stop asked for closes: now, if one was (then true: start-up should go no further); until the next call
     * when `later` (else a signal from now on waits for that call).
     */
    whenAsked(next, later = true) {
      close = next;
      stop();
      if (!later) close = null;
      return asked !== null;
    },
  };
}

if (import.meta.main) await main();

function writeToStdout(text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let n = 0; n < bytes.length;) n += Deno.stdout.writeSync(bytes.subarray(n));
}
