import assert from "node:assert/strict";
import { silentLogger } from "../core/log.ts";
import type { Subscriber, TopicHub, TopicMessage } from "../engine/topic_hub.ts";
import type { ChannelRegistry } from "../store/channel_registry.ts";
import { type Publish, type RepublishCursorStore, Republisher } from "./republisher.ts";

/** One channel "a" in memory: `subscribe(from)` replays the log from `from`, then delivers live. */
function fakeTopic() {
  const log: TopicMessage[] = [];
  const subs = new Set<Subscriber>();
  const topics = {
    head: () => Promise.resolve(log.length),
    subscribe: (_channel: string, from: number, subscriber: Subscriber) => {
      for (const m of log) if (m.seq >= from) subscriber.deliver(m);
      subs.add(subscriber);
      return Promise.resolve({ close: () => subs.delete(subscriber) });
    },
  } as unknown as TopicHub;
  const publish = (message: unknown) => {
    const m = { channel: "a", seq: log.length + 1, message, sender: "d", at: 0 };
    log.push(m);
    for (const sub of subs) sub.deliver(m);
  };
  /** The hub ends every subscription, as when it cannot read the channel's log. */
  const end = () => {
    for (const sub of [...subs]) subs.delete(sub), sub.ended?.("Cannot read the channel now");
  };
  return { topics, publish, end, subscribers: () => subs.size };
}

function republisher(
  topics: TopicHub,
  cursors?: RepublishCursorStore,
  log = silentLogger,
  names = () => ["a"],
): Republisher {
  const channels = { list: () => Promise.resolve(names().map((name) => ({ name }))) } as unknown as ChannelRegistry;
  return new Republisher({
    topics,
    channels,
    log,
    protocol: "test",
    pollMs: 60_000,
    onFailure: () => {},
    cursors,
  });
}

/** Cursors in memory, as KV keeps them across restarts; `failing` makes every save reject. */
function memoryCursors() {
  const saved = new Map<string, number>();
  let started = false;
  const store = {
    failing: false,
    saves: 0,
    load: (channel: string) => Promise.resolve(saved.get(channel)),
    started: () => Promise.resolve(started),
    markStarted: () => store.failing ? Promise.reject(new Error("disk full")) : Promise.resolve(void (started = true)),
    save: (channel: string, seq: number) => {
      store.saves++;
      if (store.failing) return Promise.reject(new Error("disk full"));
      saved.set(channel, seq);
      return Promise.resolve();
    },
  };
  return { store, saved };
}

/** A broker connection whose acknowledgements the test gives (or withholds). */
function connection() {
  const sent: number[] = [];
  const pending: PromiseWithResolvers<void>[] = [];
  const publish: Publish = (m) => {
    sent.push(m.seq);
    const p = Promise.withResolvers<void>();
    pending.push(p);
    return p.promise;
  };
  return { publish, sent, pending };
}

const ticks = () => new Promise((r) => setTimeout(r, 0));

Deno.test("after a lost connection the next one resumes at the first message the broker did not acknowledge", async () => {
  const { topics, publish } = fakeTopic();
  const r = republisher(topics);
  await r.init();
  const first = connection();
  await r.attach(first.publish);
  publish("m1");
  await ticks();
  first.pending.shift()!.resolve(); // m1 acknowledged
  await ticks();
  publish("m2"); // sent, never acknowledged
  await ticks();
  r.detach();
  first.pending.shift()!.reject(new Error("The connection closed"));
  publish("m3"); // while the broker is away
  const second = connection();
  await r.attach(second.publish);
  await ticks();
  assert.deepEqual(first.sent, [1, 2]);
  assert.deepEqual(second.sent, [2]); // a batch at a time: the next once this one is acknowledged
  second.pending.shift()!.resolve();
  await ticks();
  assert.deepEqual(second.sent, [2, 3]);
  r.close();
});

Deno.test("a new connection's messages go out even when the old one's batch is answered only after it attached", async () => {
  const { topics, publish } = fakeTopic();
  const r = republisher(topics);
  await r.init();
  const first = connection();
  await r.attach(first.publish);
  publish("m1");
  await ticks();
  r.detach();
  const second = connection();
  await r.attach(second.publish);
  first.pending.shift()!.reject(new Error("The connection closed")); // late
  await ticks();
  assert.deepEqual(second.sent, [1]);
  r.close();
});

Deno.test("a restarted re-publisher resumes after the last message the broker confirmed, not at the head", async () => {
  const { topics, publish } = fakeTopic();
  const { store, saved } = memoryCursors();
  const lines: string[] = [];
  const log = { ...silentLogger, info: (m: string) => lines.push(m) };
  const before = republisher(topics, store, log);
  await before.init();
  const first = connection();
  await before.attach(first.publish);
  publish("m1");
  await ticks();
  first.pending.shift()!.resolve(); // m1 confirmed
  await ticks();
  assert.equal(saved.get("a"), 1);
  publish("m2"); // sent, never confirmed: Sluice stops
  await ticks();
  before.close();
  publish("m3"); // published before the restart, never sent

  const after = republisher(topics, store, log);
  await after.init();
  assert.ok(
    lines.some((l) => l.includes("resumes with 2 message(s) of 1 channel(s) the broker has not confirmed yet")),
    lines.join("\n"),
  );
  const second = connection();
  await after.attach(second.publish);
  await ticks();
  assert.deepEqual(second.sent, [2]);
  second.pending.shift()!.resolve();
  await ticks();
  assert.deepEqual(second.sent, [2, 3]);
  second.pending.shift()!.resolve();
  await ticks();
  assert.equal(saved.get("a"), 3);
  after.close();
});

Deno.test("a channel's first re-publishing starts at its head, and a restart before the broker answered starts there too", async () => {
  const { topics, publish } = fakeTopic();
  publish("old");
  const { store, saved } = memoryCursors();
  const before = republisher(topics, store);
  await before.init(); // the broker is away: never attached
  await ticks();
  assert.equal(saved.get("a"), 1, "the starting point is kept");
  publish("new");
  before.close();

  const after = republisher(topics, store);
  await after.init();
  const conn = connection();
  await after.attach(conn.publish);
  await ticks();
  assert.deepEqual(conn.sent, [2], "the message published while the broker was away, not the older one");
  after.close();
});

Deno.test("a cursor KV does not take is said once and tried again with the next confirmed batch", async () => {
  const { topics, publish } = fakeTopic();
  const { store, saved } = memoryCursors();
  const warnings: string[] = [];
  const r = republisher(topics, store, { ...silentLogger, warn: (m: string) => warnings.push(m) });
  await r.init();
  await ticks();
  store.failing = true;
  const conn = connection();
  await r.attach(conn.publish);
  for (const m of ["m1", "m2"]) {
    publish(m);
    await ticks();
    conn.pending.shift()!.resolve();
    await ticks();
  }
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, /keeping where re-publishing a stands failed/);
  store.failing = false;
  publish("m3");
  await ticks();
  conn.pending.shift()!.resolve();
  await ticks();
  assert.equal(saved.get("a"), 3);
  r.close();
});

Deno.test("two rounds of channel discovery at once follow a new channel once", async () => {
  const { topics, publish } = fakeTopic();
  const { store } = memoryCursors();
  const load = store.load;
  store.load = (channel) => new Promise((resolve) => setTimeout(() => resolve(load(channel)), 10)); // a KV read
  let lists = 0;
  const channels = {
    list: () => Promise.resolve(lists++ === 0 ? [] : [{ name: "a" }]), // "a" is created after the start
  } as unknown as ChannelRegistry;
  const r = new Republisher({
    topics,
    channels,
    log: silentLogger,
    protocol: "test",
    pollMs: 5,
    onFailure: () => {},
    cursors: store,
  });
  await r.init();
  const conn = connection();
  await r.attach(conn.publish); // its round and the timer's may overlap
  await new Promise((resolve) => setTimeout(resolve, 30));
  publish("m1");
  await ticks();
  assert.deepEqual(conn.sent, [1]);
  r.close();
});

Deno.test("a channel created after the start and stopped before it was followed still goes out from its first message", async () => {
  const { topics, publish } = fakeTopic();
  const { store } = memoryCursors();
  let names: string[] = [];
  const before = republisher(topics, store, silentLogger, () => names);
  await before.init(); // no channel yet
  const conn = connection();
  await before.attach(conn.publish);
  names = ["a"]; // created, and published to, before the next read of the channel list (every 2 s)
  publish("m1");
  publish("m2");
  before.close(); // Sluice stops (or the lease changes hands) before that read

  const after = republisher(topics, store, silentLogger, () => names);
  await after.init();
  const again = connection();
  await after.attach(again.publish);
  await ticks();
  again.pending.shift()!.resolve();
  await ticks();
  assert.deepEqual(again.sent, [1, 2], "created after re-publishing first started: everything it has is new");
  after.close();
});

Deno.test("a first start whose starting points KV did not take starts at the head again next time", async () => {
  const { topics, publish } = fakeTopic();
  publish("old");
  const { store } = memoryCursors();
  const save = store.save;
  store.save = () => Promise.reject(new Error("disk full")); // the channel's starting point only: the mark would land
  const before = republisher(topics, store);
  await before.init();
  before.close();
  store.save = save;

  const after = republisher(topics, store);
  await after.init();
  const conn = connection();
  await after.attach(conn.publish);
  publish("new");
  await ticks();
  assert.deepEqual(conn.sent, [2], "its next message, not the whole channel again");
  after.close();
});

Deno.test("a channel whose log the hub cannot read is followed again from the first message not sent, none twice", async () => {
  const { topics, publish, end, subscribers } = fakeTopic();
  const r = republisher(topics);
  await r.init();
  const conn = connection();
  await r.attach(conn.publish);
  publish("m1");
  await ticks();
  publish("m2");
  publish("m3"); // buffered behind m1's batch, which the broker has not confirmed yet
  end();
  publish("m4"); // while nobody follows the channel
  await ticks();
  assert.equal(subscribers(), 0, "followed again only once what was buffered went out");
  conn.pending.shift()!.resolve(); // m1
  await ticks();
  for (const p of conn.pending.splice(0)) p.resolve(); // m2, m3
  await ticks();
  assert.equal(subscribers(), 1);
  for (const p of conn.pending.splice(0)) p.resolve(); // m4
  await ticks();
  assert.deepEqual(conn.sent, [1, 2, 3, 4]);
  r.close();
});
