import assert from "node:assert/strict";
import { parseAccepted, parseRefusals, refusalReport, refusalsBetween, unseenNote } from "./refusals.ts";

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

Deno.test("acknowledged messages Sluice took none of are told, unless its accepted count or refusals grew", () => {
  const text = `sluice_mqtt_accepted_total 7\nsluice_mqtt_accepted_totally 1\nsluice_amqp_accepted_total 3\n`;
  assert.equal(parseAccepted(text, "mqtt"), 7);
  assert.equal(parseAccepted(METRICS, "http"), null);
  const reading = (accepted: number | null, refused = 0, startedAt = 100) => ({
    byCode: new Map(refused ? [["rate_limited", refused]] : []),
    accepted,
    startedAt,
  });
  assert.match(
    unseenNote(reading(7), reading(7), 10, "mqtt")!,
    /^Error: 10 message\(s\) were acknowledged, but Sluice took none/,
  );
  assert.equal(unseenNote(reading(7), reading(8), 10, "mqtt"), null);
  assert.equal(unseenNote(reading(7), reading(7, 2), 10, "mqtt"), null, "refused: told by the refusals");
  assert.equal(unseenNote(reading(7), reading(3, 0, 200), 10, "mqtt"), null, "restarted: counted from zero");
  assert.equal(unseenNote(reading(7), reading(7), 0, "mqtt"), null, "nothing acknowledged");
  assert.equal(unseenNote(reading(null), reading(null), 10, "http"), null, "HTTP has no accepted count");
  assert.match(
    unseenNote(reading(null), reading(null), 10, "amqp")!,
    /^Error: 10 message\(s\) were acknowledged, but the Sluice at --admin-url takes no AMQP messages .* AMQP_URL$/,
  );
  assert.equal(unseenNote(null, reading(7), 10, "mqtt"), null, "unread");
});
