/**
 * MQTT: an embedded aedes broker (TCP, TLS, WebSocket at `/mqtt`) or a subscriber on an external
 * broker. Publishes become envelopes for the one ingest path; acks go out after the commit.
 *
 * @module
 */
export { type MqttAdapter, startMqtt } from "./mqtt_adapter.ts";
export type { MqttStats } from "./publish_handler.ts";
