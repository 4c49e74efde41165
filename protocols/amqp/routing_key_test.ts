import assert from "node:assert/strict";
import { orderKeyOf, parseRoute } from "./routing_key.ts";

Deno.test("a routing key with a token names the token, the channel and the kind", () => {
  assert.deepEqual(parseRoute("sl_abc/blog_queuing/invoke"), {
    token: "sl_abc",
    channel: "blog_queuing",
    kind: "invoke",
  });
  assert.deepEqual(parseRoute("sl_abc/alerts/messages"), { token: "sl_abc", channel: "alerts", kind: "message" });
});

Deno.test("a routing key without a token takes it from the sluice-token header, or is anonymous", () => {
  assert.deepEqual(parseRoute("alerts/messages", "sl_x"), { token: "sl_x", channel: "alerts", kind: "message" });
  assert.deepEqual(parseRoute("alerts/messages"), { channel: "alerts", kind: "message" });
  assert.deepEqual(parseRoute("sl_x/alerts/messages", "sl_x"), { token: "sl_x", channel: "alerts", kind: "message" });
});

Deno.test("a token in the routing key and a different one in the header is refused without quoting either", () => {
  assert.throws(() => parseRoute("sl_secret1/alerts/invoke", "sl_secret2"), (err: Error) => {
    assert.match(err.message, /differ/);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
});

Deno.test("routing keys of the wrong shape are refused with a readable reason", () => {
  assert.throws(() => parseRoute("sl_x/alerts/publish"), /ends in "publish"/);
  assert.throws(() => parseRoute("invoke"), /1 segment/);
  assert.throws(() => parseRoute("a/b/c/invoke"), /4 segment/);
  assert.throws(() => parseRoute("sl_x/bad channel/invoke"), /not valid/);
  assert.throws(() => parseRoute("/alerts/invoke"), /empty token/);
});

Deno.test("messages of one token share an order key whichever way the token came", () => {
  assert.equal(orderKeyOf("sl_x/a/invoke"), orderKeyOf("b/messages", "sl_x"));
  assert.notEqual(orderKeyOf("sl_x/a/invoke"), orderKeyOf("sl_y/a/invoke"));
  assert.equal(orderKeyOf("a/messages"), "k:a/messages");
});
