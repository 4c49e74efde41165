import { urlHost } from "../../core/url_host.ts";
import { isDeploy } from "../../config.ts";
import { describeError } from "../../core/errors.ts";
import type { Sluice } from "../../sluice.ts";
import type { Check } from "../adapter.ts";
import { duplexOfConn } from "./byte_duplex.ts";
import { EmbeddedBroker } from "./embedded_broker.ts";
import { listenMqtt, type MqttListener, readPem, type TlsPem } from "./listener.ts";
import type { MqttAdapter } from "./mqtt_adapter.ts";
import type { PublishHandler } from "./publish_handler.ts";
import { mountMqttWebSocket } from "./websocket.ts";

/** Room for the fixed header, topic and packet id around the largest accepted payload. */
const PACKET_OVERHEAD = 1024;

/** The embedded broker: TCP (or TLS) on `MQTT_PORT`, and MQTT over WebSocket at `/mqtt`. */
export async function startEmbedded(sluice: Sluice, handler: PublishHandler): Promise<MqttAdapter> {
  const { config, log } = sluice;
  const maxPacketBytes = config.MAX_BODY_BYTES + PACKET_OVERHEAD;
  const listens = !isDeploy(config) && config.MQTT_PORT !== null;
  // Read before anything starts: TLS asked for and unusable stops start-up, as a bad setting does.
  const tls = listens ? await tlsOf(config.MQTT_TLS_CERT, config.MQTT_TLS_KEY) : undefined;
  const broker = await EmbeddedBroker.start({
    handler,
    auth: {
      admin: sluice.admin,
      devices: sluice.devices,
      anonymousConnect: config.MQTT_ANONYMOUS_CONNECT,
      throttle: sluice.authThrottle,
    },
    devices: sluice.devices,
    channels: sluice.channels,
    topics: sluice.topics,
    refused: sluice.refused,
    log,
    deviceStreams: sluice.deviceStreams,
    maxQueued: config.MQTT_MAX_QUEUED,
    onQueueDrop: () => sluice.instruments.mqttQueueDropped(),
  });
  let listener: MqttListener | null = null;
  let health: Check = "ok";
  if (isDeploy(config)) log.info("MQTT: over WebSocket at /mqtt only (Deno Deploy takes no MQTT over TCP)");
  else if (config.MQTT_PORT !== null) {
    try {
      listener = listenMqtt({
        port: config.MQTT_PORT,
        hostname: config.HOSTNAME,
        tls,
        onConn: (conn) => broker.handle(duplexOfConn(conn, maxPacketBytes)),
        log,
      });
      log.info(
        `MQTT broker listening on ${listener.tls ? "mqtts" : "mqtt"}://${urlHost(config.HOSTNAME)}:${listener.port}`,
      );
    } catch (err) {
      health = "degraded";
      log.error(
        err instanceof Deno.errors.AddrInUse
          ? `MQTT port ${config.MQTT_PORT} is taken: no MQTT over TCP (MQTT over WebSocket at /mqtt still works); set MQTT_PORT to a free port, 0 for any, or off`
          : `MQTT listener cannot start on ${urlHost(config.HOSTNAME)}:${config.MQTT_PORT} (HOSTNAME, MQTT_PORT): ${
            describeError(err)
          }`,
      );
    }
  }
  return {
    name: "mqtt",
    mode: "embedded",
    port: listener?.port ?? null,
    clientId: null,
    ready: health === "ok",
    stats: handler.stats,
    connections: () => broker.connections,
    health: () => health,
    mount: (app) => mountMqttWebSocket(app, maxPacketBytes, (conn) => broker.handle(conn), config.TRUSTED_PROXIES),
    close: async () => {
      listener?.close();
      await broker.close();
      handler.close();
    },
  };
}

async function tlsOf(cert: string | undefined, key: string | undefined): Promise<TlsPem | undefined> {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new Error("mqtts needs both MQTT_TLS_CERT and MQTT_TLS_KEY");
  const pem = {
    cert: await pemOf("MQTT_TLS_CERT", cert, "certificate", /-----BEGIN CERTIFICATE-----/),
    key: await pemOf("MQTT_TLS_KEY", key, "private key", /-----BEGIN [A-Z ]*PRIVATE KEY-----/),
  };
  // What Deno's TLS finds wrong only when it listens (a key that is not the certificate's, a certificate that does
  // not decode, an encrypted key): tried on a throwaway port, so it stops start-up rather than reads as a taken port.
  try {
    Deno.listenTls({ port: 0, hostname: "127.0.0.1", ...pem }).close();
  } catch (err) {
    throw new Error(`MQTT_TLS_CERT, MQTT_TLS_KEY: cannot be used for TLS: ${describeError(err)}`);
  }
  return pem;
}

/** A PEM setting's text, or an error naming the setting (and the file, never the PEM text: a key is secret). */
async function pemOf(name: string, setting: string, what: string, marker: RegExp): Promise<string> {
  const inline = setting.includes("-----BEGIN");
  let pem;
  try {
    pem = await readPem(setting);
  } catch (err) {
    throw new Error(`${name}: cannot read "${setting}": ${describeError(err)}`);
  }
  if (!marker.test(pem)) throw new Error(`${name}: ${inline ? "its PEM text" : `"${setting}"`} holds no PEM ${what}`);
  return pem;
}
