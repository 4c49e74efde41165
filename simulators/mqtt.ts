/**
 * `deno task sim:mqtt`: a fleet of MQTT gateways publishing the seed's CSV readings (QoS 1).
 *
 *   deno task sim:mqtt --devices 20 --rate 100 --duration 30 --url mqtt://127.0.0.1:1883 --admin-token sla_…
 *
 * Each device connects with username = its id and password = its token (`ws://host:8000/mqtt` works
 * too) and publishes `{"id", "method": "blog/queues/processor", "params": {"data": "t,p,lat:lon,time"}}`
 * on `blog_queuing/invoke`; the PUBACK (sent by Sluice after the commit) is the acknowledgement.
 * A device whose connection is lost (revoked, Sluice stopped) fails what it had in flight and what it
 * sends until it is connected again (it retries every second), and says why once.
 *
 * @module
 */
import mqtt, { type MqttClient } from "mqtt";
import { simMain } from "./cli.ts";
import { toCsv } from "./fleet.ts";
import type { Transport } from "./runner.ts";
import { answersHttp, reachable, withoutPassword } from "./urls.ts";

/** Devices whose lost connection is reported by name, per cause (a whole fleet loses it at once). */
const NAMED_PER_CAUSE = 5;

const HTTP_PORT_HINT = `Sluice logs its MQTT port at start-up ("MQTT broker listening on …") and serves MQTT ` +
  `over WebSocket at ws://<host>:<PORT>/mqtt`;

/**
 * What to do about a refused or garbled CONNECT, for the two mistakes a first run makes: `--url` at Sluice's HTTP
 * port with `mqtt://` (mqtt.js then reads the HTTP server's answer as packets: "Invalid header flag bits…"), and
 * `--token-in-topic` against the embedded broker, which takes a CONNECT without credentials only when told to.
 */
export function connectHint(err: Error, url: string, tokenInTopic: boolean): string {
  const scheme = new URL(url).protocol;
  if (
    (scheme === "mqtt:" || scheme === "mqtts:") &&
    /^Invalid (header|protocol|.* packet)|^Invalid .*flag/i.test(err.message)
  ) {
    return ` (that port does not speak MQTT, an HTTP port perhaps: ${HTTP_PORT_HINT})`;
  }
  if (tokenInTopic && /not authori[sz]ed/i.test(err.message)) {
    return " (--token-in-topic connects without credentials: Sluice's embedded broker takes that only with " +
      "MQTT_ANONYMOUS_CONNECT=true; it is meant for an external broker, MQTT_URL)";
  }
  return "";
}

/** CONNACK return codes (MQTT 3.1.1) of a refused login: bad username or password, not authorized. */
const REFUSED_LOGIN = new Set([4, 5]);

/** Whether a probe CONNECT was accepted, or refused with a login's return code; throws when the broker did neither. */
async function probeConnect(url: string, login: { username: string; password: string } | null): Promise<boolean> {
  try {
    const client = await mqtt.connectAsync(url, {
      clientId: `sluice-sim-probe-${crypto.randomUUID().slice(0, 8)}`,
      ...login,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    await client.endAsync(true).catch(() => {});
    return true;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "number" && REFUSED_LOGIN.has(code)) return false;
    const e = err instanceof Error ? err : new Error(String(err));
    throw new Error(`Cannot connect to ${withoutPassword(url)} (--url): ${e.message}${connectHint(e, url, false)}`);
  }
}

/**
 * Fails (one line) unless the broker at `url` refuses a login no device has, as Sluice's embedded broker does: a
 * broker that takes any login (Mosquitto with `allow_anonymous`, say) would acknowledge every message while Sluice
 * received none, after the devices were revoked and created again for nothing. A CONNECT without credentials is tried
 * first (Sluice refuses it, not authorized, without counting a failed login against the address); only a broker that
 * takes it (Sluice with MQTT_ANONYMOUS_CONNECT=true, or another) is sent a made-up username and password.
 */
export async function checkIsSluice(url: string): Promise<void> {
  if (!await probeConnect(url, null)) return;
  const made = `sluice-sim-probe-${crypto.randomUUID()}`;
  if (!await probeConnect(url, { username: made, password: made })) return;
  throw new Error(
    `--url ${withoutPassword(url)} accepted a made-up username and password, so it is not Sluice's embedded broker ` +
      `(which refuses them): its PUBACKs would not mean Sluice got anything. Give Sluice's MQTT port (logged at ` +
      `start-up: "MQTT broker listening on …"), or --token-in-topic for the external broker Sluice uses (MQTT_URL)`,
  );
}

/**
 * One MQTT connection per device, QoS 1 publishes. With `tokenInTopic` a device does not log in
 * and names itself in the topic (`<token>/<channel>/invoke`), as Sluice needs on an external broker.
 */
export function mqttTransport(url: string, channel = "blog_queuing", tokenInTopic = false): Transport {
  const clients: MqttClient[] = [];
  let closing = false;
  const named = new Map<string, number>();
  /** Once per device and cause (the device's own set), naming the first few devices of each cause. */
  const report = (id: string, cause: string, log: (line: string) => void) => {
    const n = named.get(cause) ?? 0;
    named.set(cause, n + 1);
    if (n < NAMED_PER_CAUSE) log(`MQTT ${id}: ${cause}`);
    else if (n === NAMED_PER_CAUSE) log(`MQTT: more devices: ${cause} (not named each)`);
  };
  return {
    name: "mqtt",
    check: async () => {
      await reachable(url, ["mqtt:", "mqtts:", "ws:", "wss:"]);
      if (new URL(url).protocol === "mqtt:" && await answersHttp(url)) {
        throw new Error(`--url ${withoutPassword(url)} is an HTTP port, not an MQTT broker: ${HTTP_PORT_HINT}`);
      }
      // An external broker (--token-in-topic) is not Sluice, and may well take any login: nothing to tell there.
      if (!tokenInTopic) await checkIsSluice(url);
    },
    async connect({ id, token }, log) {
      const client = await mqtt.connectAsync(url, {
        clientId: `${id}-sim`,
        ...(tokenInTopic ? {} : { username: id, password: token }),
        reconnectPeriod: 1000,
        connectTimeout: 10_000,
      }).catch((err) => {
        throw new Error(
          `${id} cannot connect to ${withoutPassword(url)}: ${err.message}${connectHint(err, url, tokenInTopic)}`,
        );
      });
      clients.push(client);
      /** Why the connection is down; null while it is up. */
      let down: string | null = null;
      let lastError: string | null = null;
      const reported = new Set<string>();
      const tell = (cause: string) => {
        if (closing || reported.has(cause)) return;
        reported.add(cause);
        report(id, cause, log);
      };
      /** Rejects the publishes waiting for a PUBACK: mqtt.js keeps them for a reconnection that may never come. */
      const pending = new Set<(err: Error) => void>();
      const lost = () => {
        down = lastError ?? "connection closed by the server";
        tell(down);
        const err = new Error(`connection lost: ${down}`);
        for (const fail of pending) fail(err);
        pending.clear();
      };
      client.on("connect", () => {
        down = lastError = null;
      });
      client.on("error", (err) => {
        lastError = err.message;
        if (down !== null) down = err.message; // a reconnection refused: the reason it stays down
        tell(err.message);
      });
      client.on("close", lost);
      client.on("offline", lost);
      const topic = `${tokenInTopic ? `${token}/` : ""}${channel}/invoke`;
      return ({ id: messageId, reading }) => {
        // Not queued for a later connection: a device that cannot send says so now.
        if (down !== null || !client.connected) {
          return Promise.reject(new Error(`not connected: ${down ?? "connecting"}`));
        }
        const payload = JSON.stringify({
          id: messageId,
          method: "blog/queues/processor",
          params: { data: toCsv(reading) },
        });
        return new Promise<void>((resolve, reject) => {
          pending.add(reject);
          client.publishAsync(topic, payload, { qos: 1 }).then(() => resolve(), reject).finally(() =>
            pending.delete(reject)
          );
        });
      };
    },
    close: async () => {
      closing = true;
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
    },
  };
}

if (import.meta.main) {
  await simMain("sim:mqtt", "mqtt://127.0.0.1:1883", (o) => mqttTransport(o.url, undefined, o.tokenInTopic));
}
