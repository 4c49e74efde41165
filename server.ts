import { StreamCutOff } from "./core/errors.ts";
import { urlHost } from "./core/url_host.ts";
import type { Adapter, Check } from "./protocols/adapter.ts";
import { createHttpApp } from "./protocols/http/app.ts";
import { BodyDeadlines } from "./protocols/http/body.ts";
import { listenHttp } from "./protocols/http/listen.ts";
import type { Sluice } from "./sluice.ts";

/** A running Sluice: the core plus its listeners. */
export interface Server {
  readonly sluice: Sluice;
  /** The HTTP port actually bound (useful with PORT=0). */
  readonly port: number;
  readonly url: string;
  readonly adapters: readonly Adapter[];
  /** Stops the listeners, then the core (`abandon`: as if the process died, see `Sluice.close`). */
  close(options?: { abandon?: boolean }): Promise<void>;
}

export interface ServerOptions {
  readonly port: number;
  readonly hostname?: string;
  /** Protocol adapters besides plain HTTP (MQTT, AMQP, WebSocket/SSE …), already started. */
  readonly adapters?: readonly Adapter[];
}

/**
 * At most `max` HTTP requests handled at once (a streamed response counts until its handler
 * returned): past it, 503 at once instead of queueing without bound (`refused` counts them). `/healthz` and `/metrics`
 * are answered still: monitoring must see an overload.
 */
function capInFlight(
  handler: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response>,
  max: number,
  refused: () => void,
): (req: Request, info: Deno.ServeHandlerInfo) => Promise<Response> {
  let inFlight = 0;
  return async (req, info) => {
    if (inFlight >= max && !isMonitoring(req.url)) {
      refused();
      return Response.json({ error: { code: "unavailable", message: "Too many requests in flight; retry shortly" } }, {
        status: 503,
        headers: { "retry-after": "1" },
      });
    }
    inFlight++;
    try {
      return await handler(req, info);
    } finally {
      inFlight--;
    }
  };
}

/** Whether a URL is `/healthz` or `/metrics` (with a query or not), without parsing it. */
function isMonitoring(url: string): boolean {
  const path = url.slice(url.indexOf("/", url.indexOf("//") + 2)).split("?", 1)[0];
  return path === "/healthz" || path === "/metrics";
}

/** Starts the HTTP listener with the adapters' routes on a running core. */
export async function startServer(sluice: Sluice, options: ServerOptions): Promise<Server> {
  const adapters = options.adapters ?? [];
  const checks = (): Record<string, Check> => ({
    mqtt: "off",
    amqp: "off",
    ...Object.fromEntries(adapters.flatMap((a) => a.health ? [[a.name, a.health()]] : [])),
  });
  const bodyDeadline = new BodyDeadlines(sluice.config.BODY_TIMEOUT);
  const app = createHttpApp(sluice, {
    bodyDeadline,
    checks,
    adapters: () => adapters,
    mount: (app, deps) => {
      for (const a of adapters) a.mount?.(app, deps);
    },
  });
  const listening = listenHttp({
    port: options.port,
    hostname: options.hostname ?? "0.0.0.0",
    log: sluice.log,
    onError: (err) => {
      if (!(err instanceof StreamCutOff)) {
        sluice.log.error(`HTTP handler failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      return Response.json({ error: { code: "internal", message: "Internal error" } }, { status: 500 });
    },
  }, capInFlight(app.fetch, sluice.config.MAX_HTTP_IN_FLIGHT, () => sluice.instruments.httpBusy()));
  const { addr, shutdown } = await listening.catch((err) => {
    bodyDeadline.close();
    throw err;
  });
  const host = urlHost(addr.hostname);
  let closing: Promise<void> | null = null;
  return {
    sluice,
    port: addr.port,
    url: `http://${host}:${addr.port}`,
    adapters,
    close: (closeOptions) =>
      closing ??= (async () => {
        // One after the other, the waits must fit the 5 s a stop has: the adapters' (an MQTT publish in flight may take
        // 3 s to commit), then the HTTP requests' and the script runs' (2 s each), each cut to end by `by` ms after the
        // start (but given 0.3 s at least).
        const started = Date.now();
        const left = (most: number, by: number) => Math.min(most, Math.max(300, by - (Date.now() - started)));
        await Promise.allSettled(adapters.map((a) => a.close()));
        // Requests in flight finish; but clients that keep sending on kept-alive connections would
        // hold the shutdown open for ever (Deno 2.5 waits for them).
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([shutdown(), new Promise((r) => timer = setTimeout(r, left(2000, 3500)))]);
        clearTimeout(timer);
        bodyDeadline.close();
        await sluice.close({ ...closeOptions, graceMs: left(2000, 4500) });
      })(),
  };
}
