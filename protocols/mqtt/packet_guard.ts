/**
 * Follows MQTT framing in a byte stream and stops a packet larger than the limit before it is
 * buffered: aedes (and its parser) have no maximum packet size of their own.
 */
export class PacketSizeGuard {
  #state: "header" | "length" | "body" = "header";
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #remaining = 0;

  constructor(private readonly maxBytes: number) {}

  /** Checks the next bytes of the stream; throws on an oversized or malformed packet. */
  check(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      switch (this.#state) {
        case "header":
          this.#state = "length";
          this.#length = 0;
          this.#multiplier = 1;
          this.#lengthBytes = 0;
          i++;
          break;
        case "length": {
          const b = chunk[i++]!;
          this.#length += (b & 0x7f) * this.#multiplier;
          this.#multiplier *= 128;
          this.#lengthBytes++;
          if (b & 0x80) {
            if (this.#lengthBytes === 4) throw new Error("Malformed MQTT packet length");
            break;
          }
          if (this.#length > this.maxBytes) {
            throw new Error(`MQTT packet of ${this.#length} bytes is over the limit of ${this.maxBytes}`);
          }
          this.#remaining = this.#length;
          this.#state = this.#remaining === 0 ? "header" : "body";
          break;
        }
        case "body": {
          const n = Math.min(this.#remaining, chunk.length - i);
          i += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = "header";
          break;
        }
      }
    }
  }
}
