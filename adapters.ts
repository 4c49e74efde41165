import type { Adapter } from "./protocols/adapter.ts";
import { startMqtt } from "./protocols/mqtt/mod.ts";
import type { Sluice } from "./sluice.ts";

/** Starts every protocol adapter the settings ask for (each is one line here). */
export async function startAdapters(sluice: Sluice): Promise<Adapter[]> {
  const adapters: Adapter[] = [];
  const { config } = sluice;
  if (config.MQTT_URL || config.MQTT_PORT !== null) adapters.push(await startMqtt(sluice));
  return adapters;
}
