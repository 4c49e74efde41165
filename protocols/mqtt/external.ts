import type { Sluice } from "../../sluice.ts";
import type { MqttAdapter } from "./mqtt_adapter.ts";
import type { PublishHandler } from "./publish_handler.ts";

export function startExternal(_sluice: Sluice, _handler: PublishHandler): Promise<MqttAdapter> {
  throw new Error("todo");
}
