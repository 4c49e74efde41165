import type { Script } from "@sluice/script";
import { parseReading } from "./reading.ts";
import { outsideTemperature } from "./weather.ts";

/**
 * Queued for every reading: turns the CSV (or object) into a reading, adds the outside
 * temperature at the pump's coordinates, and records it on the pump's log (pump id = device id).
 */
const processor: Script = async (request, ctx) => {
  const reading = parseReading(request.params, request.receivedAt);
  const outside = await outsideTemperature(ctx, reading.coordinates);
  const enriched = outside === undefined ? reading : { ...reading, outsideTemperature: outside };
  ctx.pumps.record(enriched);
  return enriched;
};

export default processor;
