import type { Adapter } from "./protocols/adapter.ts";
import { startAmqpAdapter } from "./protocols/amqp/mod.ts";
import { dashboardAdapter } from "./protocols/dashboard/adapter.ts";
import { startMqtt } from "./protocols/mqtt/mod.ts";
import { sseAdapter } from "./protocols/sse/adapter.ts";
import { wsAdapter } from "./protocols/ws/adapter.ts";
import type { Sluice } from "./sluice.ts";

/** Starts every protocol adapter the settings ask for (each is one line here). */
export async function startAdapters(sluice: Sluice): Promise<Adapter[]> {
  const { config } = sluice;
  const maxBufferBytes = config.MAX_SEND_BUFFER_BYTES;
  const adapters: Adapter[] = [wsAdapter(sluice, { maxBufferBytes }), sseAdapter(sluice, { maxBufferBytes })];
  adapters.push(await dashboardAdapter());
  if (config.MQTT_URL || config.MQTT_PORT !== null) adapters.push(await startMqtt(sluice));
  if (config.AMQP_URL) adapters.push(await startAmqpAdapter(sluice));
  return adapters;
}
