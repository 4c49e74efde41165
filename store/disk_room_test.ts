import assert from "node:assert/strict";
import { DiskRoom } from "./disk_room.ts";

const MiB = 1024 * 1024;

Deno.test("writes are refused while the disk's free space is under the margin, read again once a second", () => {
  let now = 0, free = 500 * MiB, reads = 0;
  const room = new DiskRoom("/srv/data", 64 * MiB, { now: () => now }, undefined, () => (reads++, free));
  assert.equal(room.shortage(), null);
  free = 10 * MiB;
  now = 999;
  assert.equal(room.shortage(), null, "the last reading stands within the second");
  now = 1000;
  assert.equal(
    room.shortage(),
    "Sluice holds writes back: the disk is nearly full (10.0 MiB free in /srv/data, under the 64 MiB KV_MIN_FREE_MB " +
      "keeps for Deno KV's own work)",
  );
  free = 64 * MiB;
  now = 2000;
  assert.equal(room.shortage(), null);
  assert.equal(reads, 3);
});

Deno.test("a filesystem whose free space cannot be read refuses nothing (KV says when it cannot write), said once", () => {
  let now = 0;
  const lines: string[] = [];
  const room = new DiskRoom("/gone", 64 * MiB, { now: () => now }, (l) => lines.push(l), () => {
    throw new Deno.errors.NotFound("no such folder");
  });
  assert.equal(room.shortage(), null);
  now = 5000;
  assert.equal(room.shortage(), null);
  assert.deepEqual(lines, [
    "The free space in /gone cannot be read (no such folder): KV_MIN_FREE_MB is not applied",
  ]);
});

Deno.test("the real filesystem's free space is read (this machine has more than 1 MiB free)", () => {
  assert.equal(new DiskRoom(".", MiB, { now: () => 0 }).shortage(), null);
  assert.match(new DiskRoom(".", Number.MAX_SAFE_INTEGER, { now: () => 0 }).shortage() ?? "", /nearly full/);
});
