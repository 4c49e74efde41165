import assert from "node:assert/strict";
import { InboxLedger, MOVE_MUTATIONS, pack, type Unmoved } from "./inbox_ledger.ts";
import { PACK_BYTES } from "./inbox.ts";

/** Events as one commit acks them: entry numbers from the ledger, one stream each as given. */
function acked(ledger: InboxLedger, streams: string[], bytes = 100): Unmoved[] {
  const seqs = new Map<string, number>();
  return streams.map((stream, i) => {
    const seq = (seqs.get(stream) ?? 0) + 1;
    seqs.set(stream, seq);
    return {
      n: ledger.entryNumber(i),
      stream,
      seq,
      type: "N",
      data: i,
      at: 0,
      sets: [{ key: ["dedup", stream, seq], value: { stream, seq } }],
      bytes,
      queuedAt: 0,
    };
  });
}

Deno.test("the inbox ledger answers for acked events until their move lands, then forgets them oldest first", () => {
  const ledger = new InboxLedger();
  ledger.restore(11, 3); // a recovered inbox: entries from 11 on, packs from 3 on
  const events = acked(ledger, ["t/b", "t/a", "t/b", "t/a"]);
  assert.deepEqual(events.map((e) => e.n), [11, 12, 13, 14]);
  assert.deepEqual(ledger.packKey(0), ["inbox", 3]);
  ledger.landed(pack(events), 10);
  assert.equal(ledger.size, 4);
  assert.equal(ledger.waiting, 4);
  assert.deepEqual(ledger.unmovedFrom("t/a", 1, 10).map((e) => e.data), [1, 3]);
  assert.equal(ledger.unmoved("t/b", 2)?.data, 2);
  assert.deepEqual(ledger.withMove(["dedup", "t/b", 2]), { stream: "t/b", seq: 2 });

  ledger.startMove();
  assert.equal(ledger.waiting, 0);
  const share = ledger.nextMove();
  assert.deepEqual(share.move.map((u) => [u.stream, u.seq]), [["t/a", 1], ["t/a", 2], ["t/b", 1], ["t/b", 2]]);
  assert.equal(ledger.moving, false, "all of it fits one commit");
  // Moving t/a alone leaves entry 11 (t/b) first: the marker stays put.
  const tA = new Set(share.move.slice(0, 2));
  assert.equal(ledger.markerAfter(tA), 10);
  ledger.moved([...tA]);
  assert.equal(ledger.unmoved("t/a", 1), undefined);
  assert.equal(ledger.firstUnmoved("t/a", 1), undefined);
  assert.equal(ledger.firstUnmoved("t/b", 1), 1);
  assert.equal(ledger.withMove(["dedup", "t/a", 1]), undefined);
  const tB = new Set(share.move.slice(2));
  assert.equal(ledger.markerAfter(tB), 14, "then every entry up to the last has moved");
  ledger.moved([...tB]);
  assert.equal(ledger.size, 0);
});

Deno.test("the inbox ledger splits a big move into commits within MOVE_MUTATIONS, and packs within PACK_BYTES", () => {
  const ledger = new InboxLedger();
  const events = acked(ledger, Array.from({ length: 300 }, (_, i) => `p/${i % 7}`), 1000);
  const packs = pack(events);
  assert.ok(packs.length > 1 && packs.every((p) => p.length * 1000 <= PACK_BYTES + 1000));
  assert.deepEqual(packs.flat(), events, "every event once, in order");
  ledger.landed(packs, 0);
  ledger.startMove();
  const shares = [];
  while (ledger.moving) shares.push(ledger.nextMove());
  assert.ok(shares.length > 1);
  assert.ok(shares.every((s) => s.mutations <= MOVE_MUTATIONS));
  assert.equal(shares.reduce((n, s) => n + s.move.length, 0), 300);
  // Each share goes stream by stream, in seq order.
  const order = shares.flatMap((s) => s.move.map((u) => `${u.stream}#${String(u.seq).padStart(3, "0")}`));
  assert.deepEqual(order, [...order].sort());
});
