import assert from "node:assert/strict";
import { PacketSizeGuard } from "./packet_guard.ts";

/** A PUBLISH-like packet: header byte, varint remaining length, body. */
function packet(bodyBytes: number): Uint8Array {
  const len: number[] = [];
  let n = bodyBytes;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    len.push(b);
  } while (n > 0);
  return new Uint8Array([0x32, ...len, ...new Uint8Array(bodyBytes)]);
}

Deno.test("packets under the limit pass, in any chunking", () => {
  const guard = new PacketSizeGuard(1000);
  const stream = new Uint8Array([...packet(10), ...packet(0), ...packet(1000), ...packet(200)]);
  for (let i = 0; i < stream.length; i += 7) guard.check(stream.subarray(i, i + 7));
});

Deno.test("a packet over the limit is stopped at its header", () => {
  const guard = new PacketSizeGuard(1000);
  guard.check(packet(5));
  assert.throws(() => guard.check(packet(1001).subarray(0, 3)), /over the limit/);
});

Deno.test("a length of more than four bytes is malformed", () => {
  assert.throws(() => new PacketSizeGuard(1 << 30).check(new Uint8Array([0x30, 0xff, 0xff, 0xff, 0xff])), /Malformed/);
});
