import type { Adapter } from "./protocols/adapter.ts";
import { startAmqpAdapter } from "./protocols/amqp/mod.ts";
import type { Sluice } from "./sluice.ts";

/** Starts every protocol adapter the settings ask for (each is one line here). */
export async function startAdapters(sluice: Sluice): Promise<Adapter[]> {
  const adapters: Adapter[] = [];
  if (sluice.config.AMQP_URL) adapters.push(await startAmqpAdapter(sluice));
  return adapters;
}
