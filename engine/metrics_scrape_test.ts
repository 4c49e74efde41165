import assert from "node:assert/strict";
import { Metrics } from "../core/metrics.ts";
import { adapterSamples, type Gauge, reusedFor } from "./metrics_scrape.ts";

Deno.test("an adapter's counters are rendered as Prometheus counters named …_total", () => {
  const text = new Metrics().render(adapterSamples("amqp", { accepted: 3, deadLettered: { malformed_json: 1 } }));
  assert.match(text, /# TYPE sluice_amqp_accepted_total counter\nsluice_amqp_accepted_total 3\n/);
  assert.match(text, /# TYPE sluice_amqp_dead_lettered_total counter\n/);
  assert.match(text, /sluice_amqp_dead_lettered_total\{key="malformed_json"\} 1/);
});

Deno.test("gauges that need reads are scraped at most once a second; a failed scrape is not kept", async () => {
  let t = 0, scrapes = 0, fail = false;
  const gauges = reusedFor(
    () => {
      scrapes++;
      return fail ? Promise.reject(new Error("KV closed")) : Promise.resolve<Gauge[]>([
        { name: "g", help: "", samples: [{ value: scrapes }] },
      ]);
    },
    1000,
    () => t,
  );
  const value = async () => (await gauges())[0]!.samples[0]!.value;
  assert.equal(await value(), 1);
  t = 999;
  assert.equal(await value(), 1);
  t = 1000;
  assert.equal(await value(), 2);
  fail = true;
  t = 2500;
  await assert.rejects(gauges(), /KV closed/);
  fail = false;
  t = 2501;
  assert.equal(await value(), 4);
  assert.equal(scrapes, 4);
});

Deno.test("a slow pass over the KV is reused ten times as long as it took, up to 30 s", async () => {
  let t = 0, scrapes = 0, takes = 0;
  const gauges = reusedFor(
    async () => {
      scrapes++;
      t += takes; // the pass takes `takes` ms of the clock
      await Promise.resolve();
      return [{ name: "g", help: "", samples: [{ value: scrapes }] }];
    },
    1000,
    () => t,
  );
  takes = 400;
  await gauges(); // from 0 to 400: reused until 4,000
  t = 3999;
  await gauges();
  assert.equal(scrapes, 1);
  t = 4000;
  takes = 10_000;
  await gauges(); // a pass of 10 s: reused for 30 s, not 100
  t = 4000 + 29_999;
  await gauges();
  assert.equal(scrapes, 2);
  t = 4000 + 30_000;
  takes = 0;
  await gauges();
  assert.equal(scrapes, 3);
});
