import assert from "node:assert/strict";
import { silentLogger } from "../core/log.ts";
import { TopicHub } from "./topic_hub.ts";

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
  await assert.rejects(hub.subscribe("news", undefined, () => {}), /disk I\/O error/);
  const sub = await hub.subscribe("news", undefined, () => {});
  assert.equal(hub.subscriberCount(), 1);
  sub.close();
  hub.close();
});
