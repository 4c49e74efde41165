import assert from "node:assert/strict";
import { systemClock } from "../core/clock.ts";
import { silentLogger } from "../core/log.ts";
import { topicStream } from "../core/streams.ts";
import { MESSAGE_PUBLISHED } from "../core/tasks.ts";
import { Committer } from "../store/committer.ts";
import { claimWriterEpoch } from "../store/writer_epoch.ts";
import { TopicHub, type TopicMessage } from "./topic_hub.ts";

Deno.test("a channel's feed that could not start is dropped: the next subscription starts afresh", async () => {
  using kv = await Deno.openKv(":memory:");
  let failGets = 1;
  const flaky = new Proxy(kv, {
    get(target, name) {
      if (name === "get" && failGets > 0) {
        failGets--;
        return () => Promise.reject(new Error("disk I/O error"));
      }
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const hub = new TopicHub(flaky, silentLogger, () => () => {});
  await assert.rejects(hub.subscribe("news", undefined, { deliver: () => {} }), /disk I\/O error/);
  const sub = await hub.subscribe("news", undefined, { deliver: () => {} });
  assert.equal(hub.subscriberCount(), 1);
  sub.close();
  hub.close();
});

/**
 * A KV whose `list` calls (log reads) are counted (and fail while `reads.failing`), a committer, and
 * a doorbell the test rings.
 */
async function topicFixture() {
  const kv = await Deno.openKv(":memory:");
  const reads = { count: 0, failing: false };
  const counted = new Proxy(kv, {
    get(target, name) {
      if (name === "list") reads.count++;
      if (name === "list" && reads.failing) {
        // Reads of the log fail; the head's (a reverse read of one) does not.
        return (selector: Deno.KvListSelector, options?: Deno.KvListOptions) =>
          options?.reverse ? target.list(selector, options) : {
            [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error("disk I/O error")) }),
          };
      }
      const value = Reflect.get(target, name);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const committer = new Committer({ kv, mode: "single", clock: systemClock, epoch: await claimWriterEpoch(kv, "t") });
  const rings: ((head: number) => void)[] = [];
  const hub = new TopicHub(counted, silentLogger, (_stream, ring) => (rings.push(ring), () => {}), 2_000);
  let head = 0;
  /** Publishes `n` messages in one go, then rings. */
  const publish = async (n: number) => {
    await Promise.all(Array.from({ length: n }, (_, i) =>
      committer.write({
        appends: [{
          stream: topicStream("news"),
          event: { type: MESSAGE_PUBLISHED, data: { message: { n: head + i + 1 }, sender: "d", protocol: "http" } },
        }],
      })));
    head += n;
    for (const ring of rings) ring(head);
  };
  return {
    hub,
    reads,
    publish,
    /** Rings as a commit of another writer would. */
    ring: () => rings.forEach((ring) => ring(head)),
    close: async () => {
      hub.close();
      await committer.close();
      kv.close();
    },
  };
}

/** A subscriber whose send buffer holds 3 messages and drains one every millisecond or so. */
function slowReader() {
  const got: TopicMessage[] = [];
  let buffered = 0;
  const drain = setInterval(() => buffered = Math.max(0, buffered - 1), 1);
  return {
    got,
    subscriber: {
      deliver: (m: TopicMessage) => (got.push(m), buffered++),
      room: () => buffered < 3,
    },
    stop: () => clearInterval(drain),
  };
}

const seqs = (ms: readonly TopicMessage[]) => ms.map((m) => m.seq);
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("a live subscriber a burst leaves without room gets every message once, in order, then follows live again", async () => {
  const f = await topicFixture();
  const slow = slowReader();
  const fast: TopicMessage[] = [];
  try {
    const a = await f.hub.subscribe("news", undefined, slow.subscriber);
    const b = await f.hub.subscribe("news", undefined, { deliver: (m) => fast.push(m) });
    await f.publish(300);
    await until(() => slow.got.length === 300 && fast.length === 300, "the burst");
    await f.publish(1);
    await f.publish(1);
    await until(() => slow.got.length === 302 && fast.length === 302, "the messages after it");
    assert.deepEqual(seqs(slow.got), upTo(302));
    assert.deepEqual(seqs(fast), upTo(302));
    // What it fell behind on came from the feed's latest page, not from a read of the log per room made.
    assert.ok(f.reads.count <= 6, `${f.reads.count} log reads`);
    a.close();
    b.close();
  } finally {
    slow.stop();
    await f.close();
  }
});

Deno.test("a subscriber catching up from the log at its pace joins the live feed without a gap or a repeat", async () => {
  const f = await topicFixture();
  const slow = slowReader();
  try {
    await f.publish(250);
    const a = await f.hub.subscribe("news", 1, slow.subscriber);
    await f.publish(200); // while it catches up
    await until(() => slow.got.length === 450, "the backlog and the burst");
    await f.publish(1);
    await until(() => slow.got.length === 451, "a live message");
    assert.deepEqual(seqs(slow.got), upTo(451));
    a.close();
  } finally {
    slow.stop();
    await f.close();
  }
});

Deno.test("a subscriber that makes no room is handed its messages anyway after the wait, for its own limit to cut", async () => {
  const f = await topicFixture();
  const got: TopicMessage[] = [];
  try {
    await f.publish(20);
    const a = await f.hub.subscribe("news", 1, { deliver: (m) => got.push(m), room: () => got.length < 2 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(got.length, 2, "held back while it has no room");
    await until(() => got.length === 20, "the rest after the 2 s wait");
    assert.deepEqual(seqs(got), upTo(20));
    a.close();
  } finally {
    await f.close();
  }
});

Deno.test("subscribers without from get only what comes after them, though a commit rings while their feed starts", async () => {
  const f = await topicFixture();
  const a: TopicMessage[] = [], b: TopicMessage[] = [];
  try {
    await f.publish(1200); // more than one page of the feed
    const subscribing = f.hub.subscribe("news", undefined, { deliver: (m) => a.push(m) });
    f.ring(); // before the feed has read the head
    const subs = [await subscribing];
    // B joins between the pages of that read (the feed's first read of the log, and the next).
    for (let i = 0; i < 200 && f.reads.count < 3; i++) await new Promise((r) => setTimeout(r, 0));
    subs.push(await f.hub.subscribe("news", undefined, { deliver: (m) => b.push(m) }));
    await f.publish(1);
    await until(() => a.length > 0 && b.length > 0, "the next message");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual([seqs(a), seqs(b)], [[1201], [1201]]);
    for (const sub of subs) sub.close();
  } finally {
    await f.close();
  }
});

Deno.test("a subscription whose log cannot be read after three tries ends and says so; one closed meanwhile hears nothing", async () => {
  const f = await topicFixture();
  const ends: string[] = [], closedEnds: string[] = [];
  try {
    await f.publish(5);
    const hub = f.hub;
    f.reads.failing = true; // from the start of the catch-ups
    const got: TopicMessage[] = [];
    await hub.subscribe("news", 1, { deliver: (m) => got.push(m), ended: (why) => ends.push(why) });
    const closed = await hub.subscribe("news", 1, { deliver: () => {}, ended: (why) => closedEnds.push(why) });
    closed.close();
    await until(() => ends.length > 0, "the end");
    assert.deepEqual(got, []);
    assert.match(ends[0]!, /Cannot read the channel now \(disk I\/O error\); subscribe again/);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(closedEnds, []);
    assert.equal(hub.subscriberCount(), 0);
  } finally {
    f.reads.failing = false;
    await f.close();
  }
});
