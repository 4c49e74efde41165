import { Buffer } from "node:buffer";
import type { ConfirmChannel, Options } from "amqplib";

/** Publishes on a confirm channel; resolves when the broker confirms, rejects on a nack or a closed channel. */
export function publishConfirmed(
  ch: ConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Uint8Array,
  options: Options.Publish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    try {
      ch.publish(exchange, routingKey, body, options, (err) => {
        if (err) reject(err instanceof Error ? err : new Error(`Broker did not confirm the message (${String(err)})`));
        else resolve();
      });
    } catch (err) {
      reject(err);
    }
  });
}
