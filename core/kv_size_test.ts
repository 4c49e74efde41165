import assert from "node:assert/strict";
import { deserialize, serialize } from "node:v8";
import { utf8Length, utf8Over, valueSize } from "./kv_size.ts";

Deno.test("a value's size as KV stores it is a close upper bound of V8's serialization, where JSON undercounts", () => {
  const samples: unknown[] = [
    "x".repeat(1000),
    "温".repeat(1000),
    Array(1500).fill(0.5),
    deserialize(serialize({ text: Array(1500).fill(0.5) })), // read back: V8 writes it again as a sparse array
    Array(3000).fill(-0),
    Array(100).fill(2 ** 31),
    { temperature: 21.5, pressure: 1.25, coordinates: { lat: 45.5017, lon: -73.5673 }, time: "2026-11-25T10:00:00Z" },
    {
      entries: Array.from({ length: 30 }, (_, i) => ({
        n: i,
        stream: "t/blog_queuing/pump-1",
        data: { method: "blog/queues/processor", params: { data: "21.5,1.25,45.5:-73.5", note: "温度" } },
        at: 1795772118428,
      })),
    },
  ];
  for (const s of samples) {
    const real = serialize(s).length, est = valueSize(s);
    assert.ok(est >= real && est <= real * 1.5 + 16, `${JSON.stringify(s).slice(0, 40)}: ${est} against ${real}`);
  }
  // Where JSON's length is far below what KV stores.
  assert.ok(valueSize("温".repeat(1000)) > 2 * JSON.stringify("温".repeat(1000)).length - 10);
  assert.ok(valueSize(Array(3000).fill(-0)) > 4 * JSON.stringify(Array(3000).fill(-0)).length);
});

Deno.test("a string's UTF-8 length is counted as TextEncoder encodes it, without encoding", () => {
  const encoder = new TextEncoder();
  for (const s of ["", "abc", "é", "温度", "😀", "a😀b", "\ud800", "x\udc00y", "€".repeat(1000), "é".repeat(40_000)]) {
    assert.equal(utf8Length(s), encoder.encode(s).length, JSON.stringify(s.slice(0, 10)));
  }
  assert.equal(utf8Over("é".repeat(40_000), 49_152), true, "80,000 bytes in 40,000 characters");
  assert.equal(utf8Over("é".repeat(20_000), 49_152), false);
  assert.equal(utf8Over("a".repeat(49_153), 49_152), true);
});
