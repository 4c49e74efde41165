import type { Check } from "./protocols/http/routes/health.ts";
import { createHttpApp, type HttpAppOptions } from "./protocols/http/app.ts";
import type { Sluice } from "./sluice.ts";

/** A running Sluice: the core plus its listeners. */
export interface Server {
  readonly sluice: Sluice;
  /** The HTTP port actually bound (useful with PORT=0). */
  readonly port: number;
  readonly url: string;
  /** Stops the listeners, then the core. */
  close(): Promise<void>;
}

export interface ServerOptions {
  readonly port: number;
  readonly hostname?: string;
  readonly http?: HttpAppOptions;
}

/** Starts the HTTP listener (and, as they come, the other protocols) on a running core. */
export async function startServer(sluice: Sluice, options: ServerOptions): Promise<Server> {
  const checks = (): Record<string, Check> => ({ mqtt: "off", amqp: "off", ...options.http?.checks?.() });
  const app = createHttpApp(sluice, { ...options.http, checks });
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    port: options.port,
    hostname: options.hostname ?? "0.0.0.0",
    onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
    onError: (err) => {
      sluice.log.error(`HTTP handler failed: ${err instanceof Error ? err.message : String(err)}`);
      return Response.json({ error: { code: "internal", message: "Internal error" } }, { status: 500 });
    },
  }, app.fetch);
  const addr = await listening.promise;
  const host = addr.hostname === "0.0.0.0" ? "localhost" : addr.hostname;
  let closing: Promise<void> | null = null;
  return {
    sluice,
    port: addr.port,
    url: `http://${host}:${addr.port}`,
    close: () =>
      closing ??= (async () => {
        await server.shutdown();
        await sluice.close();
      })(),
  };
}
