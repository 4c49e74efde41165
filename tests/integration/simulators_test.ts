import assert from "node:assert/strict";
import { amqpTransport } from "../../simulators/amqp.ts";
import { httpTransport } from "../../simulators/http.ts";
import { mqttTransport } from "../../simulators/mqtt.ts";
import { runSim, type SimOptions, type Transport } from "../../simulators/runner.ts";
import { brokerUrl } from "../helpers/mqtt.ts";
import { ADMIN, integration, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";
import { AMQP_URL } from "../helpers/amqp.ts";

async function simulate(s: TestSluice, prefix: string, url: string, transport: (url: string) => Transport) {
  const options: SimOptions = {
    devices: 3,
    rate: 30,
    duration: 1.5,
    url,
    adminUrl: s.url,
    adminToken: ADMIN,
    prefix,
    seed: 7,
    inflight: 4,
  };
  const progress: number[] = [];
  const report = await runSim(options, transport(url), { onProgress: (c) => progress.push(c.sent) });
  assert.deepEqual([report.sent, report.acked, report.errors], [45, 45, 0], JSON.stringify(report));
  assert.ok(progress.length >= 1, "progress was reported");
  assert.ok(report.latency.p99 >= report.latency.p50);
  for (const id of [`${prefix}-1`, `${prefix}-2`, `${prefix}-3`]) {
    await waitFor(async () => (await (await s.admin(`/pumps/${id}`)).json()).readings === 15, 20_000, id);
  }
}

integration(
  "sim:http, sim:mqtt and sim:amqp create their devices, send the fleet's readings and count acks",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0", AMQP_URL });
    try {
      await simulate(s, "simh", `${s.url}/blog/queues/feed`, httpTransport);
      await simulate(s, "simi", `${s.url}/channels/blog_queuing/invoke`, httpTransport);
      await simulate(s, "simm", brokerUrl(s), (url) => mqttTransport(url));
      await simulate(s, "sima", AMQP_URL, (url) => amqpTransport(url));
    } finally {
      await s.close();
    }
  },
);

integration("a simulator asked for more than Sluice acknowledges stops sending when its duration is over", async () => {
  const s = await startTestSluice();
  try {
    const url = `${s.url}/blog/queues/feed`;
    const options: SimOptions = {
      devices: 1,
      rate: 20_000,
      duration: 0.5,
      url,
      adminUrl: s.url,
      adminToken: ADMIN,
      prefix: "simw",
      seed: 7,
      inflight: 1,
    };
    const lines: string[] = [];
    const report = await runSim(options, httpTransport(url), { log: (line) => lines.push(line) });
    assert.equal(report.asked, 10_000);
    assert.ok(report.sent > 0 && report.sent < report.asked, `sent ${report.sent} of ${report.asked}`);
    assert.equal(report.acked, report.sent, "what went out is acknowledged");
    assert.equal(report.errors, 0);
    assert.ok(lines.some((l) => l.includes("the rate was not reached")), lines.join("\n"));
    // A burst of a given size goes out whole, however long it takes.
    const burst = await runSim({ ...options, prefix: "simb", count: 40 }, httpTransport(url));
    assert.deepEqual([burst.asked, burst.sent, burst.acked], [40, 40, 40]);
  } finally {
    await s.close();
  }
});
