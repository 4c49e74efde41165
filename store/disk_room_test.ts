import assert from "node:assert/strict";
import { DiskRoom } from "./disk_room.ts";

const MiB = 1024 * 1024;

Deno.test("writes are refused while the disk's free space is under the margin, read again once a second", () => {
  let now = 0, free = 500 * MiB, reads = 0;
  const room = new DiskRoom("/srv/data", 64 * MiB, { now: () => now }, () => (reads++, free));
  assert.equal(room.shortage(), null);
  free = 10 * MiB;
  now = 999;
  assert.equal(room.shortage(), null, "the last reading stands within the second");
  now = 1000;
  assert.equal(
    room.shortage(),
    "KV refused the write: the disk is nearly full (10.0 MiB free in /srv/data, under the 64 MiB KV_MIN_FREE_MB " +
      "keeps for Deno KV's own work)",
  );
  free = 64 * MiB;
  now = 2000;
  assert.equal(room.shortage(), null);
  assert.equal(reads, 3);
});

Deno.test("a filesystem whose free space cannot be read refuses nothing (KV says when it cannot write)", () => {
  const room = new DiskRoom("/gone", 64 * MiB, { now: () => 0 }, () => {
    throw new Deno.errors.NotFound("no such folder");
  });
  assert.equal(room.shortage(), null);
});

Deno.test("the real filesystem's free space is read (this machine has more than 1 MiB free)", () => {
  assert.equal(new DiskRoom(".", MiB, { now: () => 0 }).shortage(), null);
  assert.match(new DiskRoom(".", Number.MAX_SAFE_INTEGER, { now: () => 0 }).shortage() ?? "", /nearly full/);
});
