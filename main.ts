/**
 * Sluice: `deno task start`. Reads the settings from the environment (see config.ts and the
 * README), opens KV, starts the core and the listeners, and stops cleanly on SIGINT/SIGTERM.
 */
import { loadConfig } from "./config.ts";
import { consoleLogger } from "./core/log.ts";
import { startAdapters } from "./adapters.ts";
import { startServer } from "./server.ts";
import { openSluice } from "./sluice.ts";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(Deno.env.toObject());
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
  let sluice;
  try {
    sluice = await openSluice({ config });
  } catch (err) {
    console.error(`Sluice cannot start: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
  const adapters = await startAdapters(sluice);
  const server = await startServer(sluice, { port: config.PORT, hostname: config.HOSTNAME, adapters });
  consoleLogger.info(`Sluice is listening on ${server.url} (KV: ${config.KV_PATH})`);
  if (sluice.admin.generated) {
    // Printed once, to the terminal only, at the start that created it.
    console.log(
      `\n  Admin token (shown only now, keep it): ${sluice.admin.generated}\n` +
        `  Dashboard: ${server.url}/#token=${sluice.admin.generated}\n`,
    );
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    consoleLogger.info(`${signal}: stopping (finishing work in flight)`);
    const force = setTimeout(() => {
      consoleLogger.warn("Stop took over 5 s; exiting");
      Deno.exit(1);
    }, 5000);
    await server.close();
    clearTimeout(force);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  if (Deno.build.os !== "windows") Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
}

if (import.meta.main) await main();
