import assert from "node:assert/strict";
import { DeviceStreams } from "./device_streams.ts";
import { RateLimitedError } from "./errors.ts";

const device = (id: string) => ({ kind: "device", id }) as const;

Deno.test("a device holds at most its limit of streams; one given back frees a slot, once", () => {
  const streams = new DeviceStreams(2);
  const first = streams.take(device("d1"));
  streams.take(device("d1"));
  assert.throws(() => streams.take(device("d1")), RateLimitedError);
  streams.take(device("d2")); // another device is not held back
  first();
  first(); // given back twice counts once
  assert.equal(streams.held("d1"), 1);
  streams.take(device("d1"));
  assert.throws(() => streams.take(device("d1")), /already holds 2 open streams .* at most 2/);
  assert.equal(streams.refused, 2);
});

Deno.test("each refusal is told with the device and the limit", () => {
  const told: [string, number][] = [];
  const streams = new DeviceStreams(1, (id, limit) => told.push([id, limit]));
  streams.take(device("d1"));
  assert.throws(() => streams.take(device("d1")), RateLimitedError);
  assert.deepEqual(told, [["d1", 1]]);
});

Deno.test("the admin token and anonymous subscribers take no device's slots", () => {
  const streams = new DeviceStreams(1);
  for (let i = 0; i < 5; i++) streams.take({ kind: "admin" }), streams.take({ kind: "anonymous" });
  assert.equal(streams.held("admin"), 0);
});
