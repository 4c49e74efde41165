import assert from "node:assert/strict";
import { integration, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { brokerUrl, connectDevice, csvReading, waitForReadings } from "../helpers/mqtt.ts";

integration("embedded broker: 500 QoS 1 publishes from 5 devices are acked and become readings in order", async () => {
  const s = await startTestSluice({ MQTT_PORT: "0" });
  const clients = [];
  try {
    const ids = ["m-1", "m-2", "m-3", "m-4", "m-5"];
    for (const id of ids) clients.push(await connectDevice(brokerUrl(s), id, await s.device(id)));
    await Promise.all(clients.map(async (c, d) => {
      // Each device waits for each PUBACK (the contract keeps order for acked messages).
      for (let n = 0; n < 100; n++) {
        const topic = n % 2 === 0 ? "blog_queuing/invoke" : "blog_queuing/invoke";
        await c.publishAsync(topic, csvReading(n), { qos: 1 });
      }
      void d;
    }));
    for (const id of ids) {
      const numbers = await waitForReadings(s, id, 100);
      assert.deepEqual(numbers, Array.from({ length: 100 }, (_, n) => n), `${id} readings in publish order`);
    }
    void waitFor;
  } finally {
    await Promise.all(clients.map((c) => c.endAsync()));
    await s.close();
  }
});
