import assert from "node:assert/strict";
import { parseRefusals, refusalsBetween } from "./refusals.ts";

const METRICS = `# HELP sluice_ingest_refused_total Messages refused
# TYPE sluice_ingest_refused_total counter
sluice_ingest_refused_total{protocol="mqtt",code="rate_limited"} 203
sluice_ingest_refused_total{code="forbidden",protocol="mqtt"} 2
sluice_ingest_refused_total{protocol="http",code="rate_limited"} 50
sluice_ingest_refused_totally{protocol="mqtt",code="x"} 1
sluice_mqtt_refused_total 0
`;

Deno.test("Sluice's refusals are read for one protocol by code, and compared between two readings", () => {
  const before = parseRefusals(METRICS, "mqtt");
  assert.deepEqual([...before], [["rate_limited", 203], ["forbidden", 2]]);
  assert.deepEqual([...parseRefusals(METRICS, "amqp")], []);
  const after = parseRefusals(METRICS.replace("} 203", "} 250").replace("} 50", "} 70") + "garbage{\n", "mqtt");
  assert.deepEqual(refusalsBetween(before, after), [["rate_limited", 47]]);
});
