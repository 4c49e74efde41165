/**
 * `deno task sim:mqtt`: a fleet of MQTT gateways publishing the seed's CSV readings (QoS 1).
 *
 *   deno task sim:mqtt --devices 20 --rate 100 --duration 30 --url mqtt://127.0.0.1:1883 --admin-token sla_…
 *
 * Each device connects with username = its id and password = its token (`ws://host:8000/mqtt` works
 * too) and publishes `{"id", "method": "blog/queues/processor", "params": {"data": "t,p,lat:lon,time"}}`
 * on `blog_queuing/invoke`; the PUBACK (sent by Sluice after the commit) is the acknowledgement.
 *
 * @module
 */
import mqtt, { type MqttClient } from "mqtt";
import { toCsv } from "./fleet.ts";
import { simMain, type Transport } from "./runner.ts";

/**
 * One MQTT connection per device, QoS 1 publishes. With `tokenInTopic` a device does not log in
 * and names itself in the topic (`<token>/<channel>/invoke`), as Sluice needs on an external broker.
 */
export function mqttTransport(url: string, channel = "blog_queuing", tokenInTopic = false): Transport {
  const clients: MqttClient[] = [];
  return {
    name: "mqtt",
    async connect({ id, token }) {
      const client = await mqtt.connectAsync(url, {
        clientId: `${id}-sim`,
        ...(tokenInTopic ? {} : { username: id, password: token }),
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
      });
      clients.push(client);
      return async ({ id: messageId, reading }) => {
        const payload = JSON.stringify({
          id: messageId,
          method: "blog/queues/processor",
          params: { data: toCsv(reading) },
        });
        await client.publishAsync(`${tokenInTopic ? `${token}/` : ""}${channel}/invoke`, payload, { qos: 1 });
      };
    },
    close: async () => {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    },
  };
}

if (import.meta.main) {
  await simMain("sim:mqtt", "mqtt://127.0.0.1:1883", (o) => mqttTransport(o.url, undefined, o.tokenInTopic));
}
