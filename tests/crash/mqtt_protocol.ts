import mqtt, { type MqttClient } from "mqtt";
import { freePort } from "./child.ts";
import type { Protocol } from "./crash_run.ts";

/** How long a publish may wait for its PUBACK before the device gives up on the connection. */
const PUBACK_TIMEOUT_MS = 15_000;

/**
 * The MQTT sender: one mqtt.js client per device on the embedded broker (QoS 1, credentials in
 * CONNECT). Acknowledged by the PUBACK, which Sluice sends only after the commit. When the
 * connection drops (a kill) the publish fails; the next send connects again and the device
 * resends the same message (same `id`) until a PUBACK comes.
 */
export function mqttProtocol(port = freePort()): Protocol {
  return {
    name: "mqtt",
    env: { MQTT_PORT: String(port) },
    connect: () => {
      const clients = new Map<string, MqttClient>();
      const drop = (device: string) => {
        clients.get(device)?.end(true);
        clients.delete(device);
      };
      const clientOf = async (device: string, token: string) => {
        const known = clients.get(device);
        if (known?.connected) return known;
        if (known) drop(device);
        // No retries inside mqtt.js: a connection closed before its CONNACK (a kill) fails at once.
        const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
          username: device,
          password: token,
          clientId: device,
          clean: true,
          reconnectPeriod: 0,
          connectTimeout: 5000,
        }, false).catch((err) => {
          throw new Error(`MQTT connect: ${err instanceof Error ? err.message : err}`);
        });
        client.on("error", () => {}); // the publish below sees the loss through "close"
        clients.set(device, client);
        return client;
      };
      return Promise.resolve({
        send: async (device, token, id, csv) => {
          const client = await clientOf(device, token);
          const payload = JSON.stringify({ method: "blog/queues/processor", params: { data: csv }, id });
          try {
            await pubacked(client, "blog_queuing/invoke", payload);
          } catch (err) {
            drop(device);
            throw err;
          }
        },
        close: async () => {
          await Promise.all([...clients.values()].map((c) => c.endAsync(true).catch(() => {})));
          clients.clear();
        },
      });
    },
  };
}

/** Publishes at QoS 1 and resolves on the PUBACK; rejects when the connection closes first or time runs out. */
function pubacked(client: MqttClient, topic: string, payload: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      cleanup();
      reject(new Error(`MQTT publish: ${why}`));
    };
    const onClose = () => fail("connection closed before the PUBACK");
    const timer = setTimeout(() => fail("no PUBACK in time"), PUBACK_TIMEOUT_MS);
    const cleanup = () => {
      clearTimeout(timer);
      client.off("close", onClose);
    };
    client.once("close", onClose);
    client.publish(topic, payload, { qos: 1 }, (err) => {
      if (err) return fail(err.message);
      cleanup();
      resolve();
    });
  });
}
