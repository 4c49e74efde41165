import { cpuMeter, percentiles, rssMiB } from "../measure.ts";
import type { ScenarioResult } from "../result.ts";
import { ADMIN, benchSluice } from "../sluice.ts";

/** Topic fan-out: 100 WebSocket subscribers, messages published over HTTP; deliveries/s and latency. */
export async function fanout(weatherUrl: string, messages: number): Promise<ScenarioResult> {
  const b = await benchSluice(weatherUrl, { MQTT_PORT: "off" });
  const sockets: WebSocket[] = [];
  try {
    const url = b.sluice.url;
    const res = await fetch(`${url}/admin/channels`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ name: "fanout" }),
    });
    await res.body?.cancel();
    const latencies: number[] = [];
    let delivered = 0;
    for (let i = 0; i < 100; i++) {
      const ws = new WebSocket(`${url.replace("http", "ws")}/ws?token=${ADMIN}`);
      await new Promise((resolve, reject) => (ws.onopen = resolve, ws.onerror = reject));
      const subscribed = new Promise((resolve) => ws.onmessage = resolve);
      ws.send(JSON.stringify({ id: 1, method: "Subscribe", params: { channel: "fanout" } }));
      await subscribed;
      ws.onmessage = (e) => {
        const frame = JSON.parse(e.data);
        if (frame.seq === undefined) return;
        delivered++;
        if (delivered % 10 === 0) latencies.push(Date.now() - frame.message.sentAt);
      };
      sockets.push(ws);
    }
    const pid = b.sluice.pid!;
    const cpu = cpuMeter(pid), t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < messages) {
        next++;
        const r = await fetch(`${url}/channels/fanout/messages`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN}` },
          body: JSON.stringify({ sentAt: Date.now(), text: "x".repeat(100) }),
        });
        await r.body?.cancel();
      }
    }));
    const deadline = performance.now() + 60_000;
    while (delivered < messages * 100 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const wall = (performance.now() - t0) / 1000;
    return {
      scenario: "Topic fan-out to 100 WebSocket subscribers",
      rate: Math.round(delivered / wall),
      unit: "deliveries/s",
      deliveryLatency: percentiles(latencies),
      rssMiB: rssMiB(pid),
      ...cpu.read(wall),
      notes: `${messages} messages × 100 subscribers, ${delivered} delivered; latency = publish → delivery`,
    };
  } finally {
    for (const ws of sockets) ws.close();
    await b.close();
  }
}
