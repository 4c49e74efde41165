import assert from "node:assert/strict";
import { looksLikeToken } from "../../core/names.ts";
import { messagesTopic, parsePublishTopic, parseSubscribeTopic } from "./routes.ts";

const TOKEN = `sl_${"a".repeat(43)}`;

Deno.test("publish topics with and without a token become routes", () => {
  assert.deepEqual(parsePublishTopic(`${TOKEN}/blog_queuing/invoke`), {
    token: TOKEN,
    channel: "blog_queuing",
    kind: "invoke",
  });
  assert.deepEqual(parsePublishTopic("alerts/messages"), { channel: "alerts", kind: "message" });
  assert.deepEqual(parsePublishTopic("anything/alerts/messages"), {
    token: "anything",
    channel: "alerts",
    kind: "message",
  });
});

Deno.test("topics that are not Sluice routes are refused as routes", () => {
  for (
    const topic of [
      "alerts",
      "alerts/other",
      "a/b/c/invoke",
      "/alerts/invoke",
      "alerts/invoke/",
      "al.erts/messages",
      `${TOKEN}/invoke`, // a token where the channel goes must never become a channel name
      "",
    ]
  ) {
    assert.equal(parsePublishTopic(topic), null, topic);
  }
});

Deno.test("only <channel>/messages can be subscribed to", () => {
  assert.equal(parseSubscribeTopic("alerts/messages"), "alerts");
  assert.equal(parseSubscribeTopic("_pumps/messages"), "_pumps");
  for (const f of ["#", "+/messages", "alerts/#", "alerts/+", `${TOKEN}/alerts/messages`, "alerts/invoke"]) {
    assert.equal(parseSubscribeTopic(f), null, f);
  }
  assert.equal(messagesTopic("alerts"), "alerts/messages");
});

Deno.test("token-shaped segments are recognised, the admin token's too, and never taken for a channel", () => {
  const admin = `sla_${"b".repeat(43)}`;
  assert.ok(looksLikeToken(TOKEN));
  assert.ok(looksLikeToken(admin));
  assert.ok(!looksLikeToken("blog_queuing"));
  assert.equal(parseSubscribeTopic(`${admin}/messages`), null);
  assert.equal(parsePublishTopic(`${admin}/messages`), null);
});
