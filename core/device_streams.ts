import type { Principal } from "./envelope.ts";
import { RateLimitedError } from "./errors.ts";

/** Connections (WebSocket sessions, SSE responses, MQTT connections) one device may hold open at once. */
export const MAX_STREAMS_PER_DEVICE = 100;

/**
 * Counts the streams each device holds open, so one device (a leaked token, a client reconnecting
 * in a loop without closing) cannot take the connections and send buffers every device shares.
 * The admin token and anonymous subscribers are bounded only by the protocols' overall caps.
 */
export class DeviceStreams {
  readonly #open = new Map<string, number>();
  /** Connections refused because their device held its limit. */
  refused = 0;

  constructor(
    private readonly perDevice = MAX_STREAMS_PER_DEVICE,
    /** Told of each refusal (to log it). */
    private readonly onRefused?: (device: string, limit: number) => void,
  ) {}

  /**
   * Takes a slot for `principal` (a device's; nothing to take for others) and returns what gives
   * it back (once, however often called); a `RateLimitedError` when the device holds its limit.
   */
  take(principal: Principal): () => void {
    if (principal.kind !== "device") return () => {};
    const id = principal.id;
    const held = this.#open.get(id) ?? 0;
    if (held >= this.perDevice) {
      this.refused++;
      this.onRefused?.(id, this.perDevice);
      throw new RateLimitedError(
        `Device "${id}" already holds ${held} open streams (WebSocket, SSE and MQTT together, at most ${this.perDevice}); ` +
          "close one first",
      );
    }
    this.#open.set(id, held + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.#open.get(id) ?? 1) - 1;
      if (left > 0) this.#open.set(id, left);
      else this.#open.delete(id);
    };
  }

  /** Streams a device holds open. */
  held(device: string): number {
    return this.#open.get(device) ?? 0;
  }
}
