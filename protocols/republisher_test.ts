import assert from "node:assert/strict";
import { silentLogger } from "../core/log.ts";
import type { TopicHub, TopicMessage } from "../engine/topic_hub.ts";
import type { ChannelRegistry } from "../store/channel_registry.ts";
import { type Publish, Republisher } from "./republisher.ts";

/** One channel "a" in memory: `subscribe(from)` replays the log from `from`, then delivers live. */
function fakeTopic() {
  const log: TopicMessage[] = [];
  const subs = new Set<(m: TopicMessage) => void>();
  const topics = {
    head: () => Promise.resolve(log.length),
    subscribe: (_channel: string, from: number, deliver: (m: TopicMessage) => void) => {
      for (const m of log) if (m.seq >= from) deliver(m);
      subs.add(deliver);
      return Promise.resolve({ close: () => subs.delete(deliver) });
    },
  } as unknown as TopicHub;
  const publish = (message: unknown) => {
    const m = { channel: "a", seq: log.length + 1, message, sender: "d", at: 0 };
    log.push(m);
    for (const deliver of subs) deliver(m);
  };
  return { topics, publish };
}

function republisher(topics: TopicHub): Republisher {
  const channels = { list: () => Promise.resolve([{ name: "a" }]) } as unknown as ChannelRegistry;
  return new Republisher({
    topics,
    channels,
    log: silentLogger,
    protocol: "test",
    pollMs: 60_000,
    onFailure: () => {},
  });
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
