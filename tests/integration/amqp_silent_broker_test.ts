import assert from "node:assert/strict";
import { freePort, SluiceProcess } from "../crash/child.ts";
import { AMQP_URL, amqpAdapterOf, amqpReady, ensureRabbitMq, heartbeatOf } from "../helpers/amqp.ts";
import { integration, recordingLogger, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { type TcpProxy, tcpProxy } from "../helpers/tcp_proxy.ts";

/** A proxy to the test RabbitMQ and the AMQP_URL that goes through it. */
function proxied(): { proxy: TcpProxy; url: string } {
  const target = new URL(AMQP_URL);
  const proxy = tcpProxy({ hostname: target.hostname, port: Number(target.port || 5672) });
  target.port = String(proxy.port);
  return { proxy, url: target.href };
}

integration("SIGTERM while RabbitMQ has gone silent (TCP open): Sluice still exits 0 within 5 s", async () => {
  await ensureRabbitMq();
  const { proxy, url } = proxied();
  const dir = await Deno.makeTempDir({ prefix: "sluice-amqp-stop-" });
  const sluice = new SluiceProcess(freePort(), {
    KV_PATH: `${dir}/sluice.kv`,
    MQTT_PORT: "off",
    WEATHER_API_URL: "off",
    AMQP_URL: url,
  });
  try {
    await sluice.start(); // healthz ok: consuming iot.ingest through the proxy
    proxy.stall();
    const started = Date.now();
    const code = await sluice.stop();
    const ms = Date.now() - started;
    assert.equal(code, 0, `exit code (log:\n${sluice.log})`);
    assert.ok(ms < 5000, `stopped in ${ms} ms`);
    assert.match(sluice.log, /Stopped/);
  } finally {
    await sluice.kill();
    proxy.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

integration("Sluice asks RabbitMQ for a 10 s heartbeat unless AMQP_URL sets one", async () => {
  await ensureRabbitMq();
  const own = new URL(AMQP_URL);
  own.searchParams.set("heartbeat", "30");
  for (const [url, heartbeat] of [[AMQP_URL, 10], [own.href, 30]] as const) {
    const s = await startTestSluice({ AMQP_URL: url });
    try {
      await amqpReady(s);
      assert.equal(await heartbeatOf(amqpAdapterOf(s)), heartbeat, url);
    } finally {
      await s.close();
    }
  }
});

integration(
  "when RabbitMQ goes silent (TCP open), AMQP is degraded within about 30 s, and ok again once it answers",
  async () => {
    await ensureRabbitMq();
    const { proxy, url } = proxied();
    const s = await startTestSluice({ AMQP_URL: url });
    const amqp = async () => (await (await fetch(`${s.url}/healthz`)).json()).checks.amqp;
    try {
      await amqpReady(s);
      proxy.stall();
      // Two to three 10 s heartbeats (with RabbitMQ's 60 s it took up to three minutes).
      await waitFor(async () => (await amqp()) === "degraded", 35_000, "AMQP degraded");
      proxy.cut();
      proxy.restore();
      await amqpReady(s, 30_000);
    } finally {
      await s.close();
      proxy.close();
    }
  },
);

integration("a virtual host RabbitMQ refuses is named in the log line, without the credentials", async () => {
  await ensureRabbitMq();
  const url = new URL(AMQP_URL);
  url.pathname = "/sluice-no-such-vhost";
  const log = recordingLogger();
  const s = await startTestSluice({ AMQP_URL: url.href }, undefined, { log });
  try {
    const line = await waitFor(() => log.lines.find((l) => l.includes("AMQP: cannot use")), 10_000, "the log line");
    assert.match(line, /virtual host "sluice-no-such-vhost"/);
    assert.doesNotMatch(line, /ConnectionOpenOk/);
    assert.ok(!log.lines.some((l) => l.includes(`:${url.password}@`)), "no password in the log");
    assert.equal((await (await fetch(`${s.url}/healthz`)).json()).checks.amqp, "degraded");
  } finally {
    await s.close();
  }
});
