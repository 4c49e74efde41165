import assert from "node:assert/strict";
import { amqpCases } from "./amqp_cases.ts";
import { httpCases, wsCases } from "./http_cases.ts";
import { mqttCases } from "./mqtt_cases.ts";

Deno.test("the bad-input catalogue holds at least 200 distinct cases across HTTP, WebSocket, MQTT and AMQP", () => {
  const lists = { http: httpCases, ws: wsCases, mqtt: mqttCases, amqp: amqpCases };
  const counts = Object.fromEntries(Object.entries(lists).map(([p, cases]) => [p, cases.length]));
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`catalogue: ${JSON.stringify(counts)}, ${total} in all`);
  assert.ok(total >= 200, `${total} cases`);
  assert.ok(counts.mqtt! >= 40 && counts.amqp! >= 25, JSON.stringify(counts));
  for (const [protocol, cases] of Object.entries(lists)) {
    const names = cases.map((c) => c.name);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], `${protocol} case names are unique`);
  }
});
