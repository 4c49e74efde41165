import type { Sluice } from "../../sluice.ts";
import type { Adapter } from "../adapter.ts";
import { startEmbedded } from "./embedded.ts";
import { startExternal } from "./external.ts";
import { type MqttStats, PublishHandler } from "./publish_handler.ts";

/** The MQTT adapter: the embedded broker, or a subscriber on an external broker (`MQTT_URL`). */
export interface MqttAdapter extends Adapter {
  readonly name: "mqtt";
  readonly mode: "embedded" | "external";
  /** The embedded broker's TCP (or TLS) port; null without one (external mode, Deploy, port taken). */
  readonly port: number | null;
  /** External mode: the client id of Sluice's persistent session on the broker. */
  readonly clientId: string | null;
  /** Taking messages: the listener is up (embedded), or the session is subscribed (external). */
  readonly ready: boolean;
  /** What happened to publishes so far. */
  readonly stats: MqttStats;
}

/** Starts the MQTT adapter the settings ask for. */
export async function startMqtt(sluice: Sluice): Promise<MqttAdapter> {
  const handler = new PublishHandler({
    ingest: sluice.ingest,
    devices: sluice.devices,
    refused: sluice.refused,
    clock: sluice.clock,
    maxBodyBytes: sluice.config.MAX_BODY_BYTES,
    log: sluice.log,
  });
  return sluice.config.MQTT_URL ? await startExternal(sluice, handler) : await startEmbedded(sluice, handler);
}
