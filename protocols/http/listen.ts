import { describeError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";

/** How long after its listener died HTTP listens again (and again, while it cannot). */
const AGAIN_MS = 1000;

export interface HttpListenOptions {
  readonly port: number;
  readonly hostname: string;
  readonly onError: (err: unknown) => Response;
  readonly log: Logger;
}

/** A running HTTP listener that listens again after it died. */
export interface HttpListener {
  readonly addr: Deno.NetAddr;
  shutdown(): Promise<void>;
}

/**
 * `Deno.serve`, served again when its listener dies. At the open-file limit (idle connections
 * past `ulimit -n`) one failed accept ends Deno's server, and its `finished` rejects: left
 * uncaught, that stopped the process. Here it is logged, and the port (the one bound first, so
 * `PORT=0` keeps its port) is listened on again every second until that works.
 */
export async function listenHttp(
  options: HttpListenOptions,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): Promise<HttpListener> {
  const { log } = options;
  let stopping = false;
  let server: Deno.HttpServer<Deno.NetAddr>;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const serve = (port: number): Promise<Deno.NetAddr> => {
    const listening = Promise.withResolvers<Deno.NetAddr>();
    const started = Deno.serve({
      port,
      hostname: options.hostname,
      onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
      onError: options.onError,
    }, handler);
    server = started;
    started.finished.catch(async (err) => {
      if (stopping || server !== started) return;
      log.error(`HTTP listener stopped: ${describeError(err)}; listening again in ${AGAIN_MS / 1000} s`);
      again((await listening.promise).port, 0); // the port bound (PORT=0 chose one)
    });
    return listening.promise;
  };

  const again = (port: number, failures: number): void => {
    timer = setTimeout(() => {
      if (stopping) return;
      try {
        void serve(port).then(() => log.info(`HTTP listens on port ${port} again`));
      } catch (err) {
        // Said at the first failure and once a minute after.
        if (failures % 60 === 0) log.error(`HTTP cannot listen on port ${port} again yet: ${describeError(err)}`);
        again(port, failures + 1);
      }
    }, AGAIN_MS);
  };

  const addr = await serve(options.port);
  return {
    addr,
    shutdown: () => {
      stopping = true;
      clearTimeout(timer);
      return server.shutdown();
    },
  };
}
