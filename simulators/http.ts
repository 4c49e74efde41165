/**
 * `deno task sim:http`: a fleet of HTTP gateways, as in the sample application.
 *
 *   deno task sim:http --devices 20 --rate 200 --duration 30 --admin-token sla_…
 *
 * By default each reading is POSTed as JSON to the public script `/blog/queues/feed`; with a
 * `--url` ending in `/channels/<ch>/invoke` it is queued directly, with an id (resends are no-ops).
 *
 * @module
 */
import { simMain } from "./cli.ts";
import { toCsv } from "./fleet.ts";
import type { Transport } from "./runner.ts";
import { answersHttp, reachable } from "./urls.ts";

/** Sends readings over HTTP; a 2xx answer is the acknowledgement. */
export function httpTransport(url: string): Transport {
  const invoke = /\/channels\/[^/]+\/invoke\/?$/.test(new URL(url).pathname);
  /** Ends the requests still waiting for an answer when the run is over (given up on, or interrupted). */
  const closing = new AbortController();
  return {
    name: "http",
    check: () => {
      // The base URL of Sluice (a newcomer's first guess) would POST to the dashboard: 405 for every reading.
      const u = new URL(url);
      if (u.pathname.replace(/\/+$/, "") === "") {
        return Promise.reject(
          new Error(
            `--url ${u.origin} names no script or channel: give the URL readings are POSTed to, ` +
              `${u.origin}/blog/queues/feed or ${u.origin}/channels/blog_queuing/invoke`,
          ),
        );
      }
      return reachable(url, ["http:", "https:"]).then(async () => {
        // Before any device is revoked and created again: a port that is no HTTP server (the MQTT port) fails them all.
        if (u.protocol === "http:" && !(await answersHttp(url))) {
          throw new Error(`--url ${u.origin} does not answer HTTP: is it Sluice's HTTP port (PORT, 8000 by default)?`);
        }
      });
    },
    connect: ({ token }) =>
      Promise.resolve(async ({ id, reading }) => {
        const body = invoke
          ? { method: "blog/queues/processor", params: { data: toCsv(reading) }, id }
          : { ...reading, temperature: String(reading.temperature), pressure: String(reading.pressure) };
        const res = await fetch(url, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(body),
          signal: closing.signal,
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
      }),
    close: () => Promise.resolve(closing.abort()),
  };
}

if (import.meta.main) await simMain("sim:http", "http://localhost:8000/blog/queues/feed", (o) => httpTransport(o.url));
