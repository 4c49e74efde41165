import assert from "node:assert/strict";
import { Metrics } from "../core/metrics.ts";
import { adapterSamples } from "./metrics_scrape.ts";

Deno.test("an adapter's counters are rendered as Prometheus counters named …_total", () => {
  const text = new Metrics().render(adapterSamples("amqp", { accepted: 3, deadLettered: { malformed_json: 1 } }));
  assert.match(text, /# TYPE sluice_amqp_accepted_total counter\nsluice_amqp_accepted_total 3\n/);
  assert.match(text, /# TYPE sluice_amqp_dead_lettered_total counter\n/);
  assert.match(text, /sluice_amqp_dead_lettered_total\{key="malformed_json"\} 1/);
});
