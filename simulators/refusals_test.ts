import assert from "node:assert/strict";
import { parseRefusals, refusalReport, refusalsBetween } from "./refusals.ts";

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

Deno.test("a run's refusals: counted between two readings, from zero after a restart, said when unread", () => {
  const reading = (startedAt: number, n: number) => ({ byCode: new Map([["rate_limited", n]]), startedAt });
  assert.deepEqual(refusalReport(reading(100, 5), reading(100, 8)), { refused: [["rate_limited", 3]] });
  const restarted = refusalReport(reading(100, 50), reading(200, 8));
  assert.deepEqual(restarted.refused, [["rate_limited", 8]]);
  assert.match(restarted.note!, /Sluice restarted during the run/);
  for (const [before, after, when] of [[null, reading(1, 1), "start"], [reading(1, 1), null, "end"]] as const) {
    const unread = refusalReport(before, after);
    assert.equal(unread.refused, null);
    assert.match(unread.note!, new RegExp(`not checked: its /metrics could not be read at the ${when} of the run`));
  }
});
