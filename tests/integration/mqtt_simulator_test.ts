import assert from "node:assert/strict";
import { runMqttSim } from "../../simulators/mqtt.ts";
import { ADMIN, integration, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { brokerUrl } from "../helpers/mqtt.ts";

integration(
  "sim:mqtt creates its devices, publishes the seed's CSV readings and counts the acknowledgements",
  async () => {
    const s = await startTestSluice({ MQTT_PORT: "0" });
    try {
      const progress: number[] = [];
      const counts = await runMqttSim({
        url: brokerUrl(s),
        devices: 3,
        rate: 10,
        duration: 1.5,
        adminUrl: s.url,
        adminToken: ADMIN,
        prefix: "simt",
      }, { onProgress: (c) => progress.push(c.sent) });
      assert.deepEqual([counts.sent, counts.acked, counts.refused], [45, 45, 0]);
      assert.ok(progress.length >= 1, "progress was reported");
      for (const id of ["simt-1", "simt-2", "simt-3"]) {
        await waitFor(async () => (await (await s.admin(`/pumps/${id}`)).json()).readings === 15, 20_000, id);
      }
    } finally {
      await s.close();
    }
  },
);
