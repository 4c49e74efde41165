import assert from "node:assert/strict";
import { AckWindow } from "./ack_window.ts";

function window(tags: number[]): AckWindow {
  const w = new AckWindow();
  for (const t of tags) w.track(t);
  return w;
}

Deno.test("a finished run at the low end is acked with one multiple ack", () => {
  const w = window([1, 2, 3, 4]);
  w.done(2), w.done(1), w.done(3);
  assert.deepEqual(w.take(), [{ tag: 3, multiple: true }]);
  assert.equal(w.outstanding, 1);
  w.done(4);
  assert.deepEqual(w.take(), [{ tag: 4, multiple: false }]);
  assert.equal(w.outstanding, 0);
});

Deno.test("deliveries finished above a gap are acked singly and never again", () => {
  const w = window([1, 2, 3, 4, 5]);
  w.done(3), w.done(5);
  assert.deepEqual(w.take(), [{ tag: 3, multiple: false }, { tag: 5, multiple: false }]);
  assert.equal(w.outstanding, 3);
  w.done(1);
  assert.deepEqual(w.take(), [{ tag: 1, multiple: false }]);
  w.done(2);
  // 2 finishes; 3 was acked already, so the run ends at 2 and 4 stays outstanding.
  assert.deepEqual(w.take(), [{ tag: 2, multiple: false }]);
  w.done(4);
  assert.deepEqual(w.take(), [{ tag: 4, multiple: false }]);
  assert.equal(w.outstanding, 0);
  assert.deepEqual(w.take(), []);
});

Deno.test("a multiple ack never covers an unfinished delivery", () => {
  const w = window(Array.from({ length: 3000 }, (_, i) => i + 1));
  const finished = new Set<number>();
  const acked = new Set<number>();
  let seed = 7;
  const rnd = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (let t = 1; t <= 3000; t++) {
    const tag = Math.min(3000, Math.max(1, t + Math.floor((rnd() - 0.5) * 40)));
    if (finished.has(tag)) continue;
    finished.add(tag), w.done(tag);
    if (rnd() < 0.3) {
      for (const a of w.take()) {
        const covers = a.multiple ? [...Array(a.tag).keys()].map((k) => k + 1).filter((k) => !acked.has(k)) : [a.tag];
        for (const c of covers) {
          assert.ok(finished.has(c), `ack ${JSON.stringify(a)} covers unfinished ${c}`);
          acked.add(c);
        }
      }
    }
  }
  for (let t = 1; t <= 3000; t++) if (!finished.has(t)) finished.add(t), w.done(t);
  for (const a of w.take()) {
    if (!a.multiple) assert.ok(!acked.has(a.tag), `tag ${a.tag} acked twice`);
    for (let k = 1; k <= a.tag; k++) if (a.multiple || k === a.tag) acked.add(k);
  }
  assert.equal(acked.size, 3000);
  assert.equal(w.outstanding, 0);
});
