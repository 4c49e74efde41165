import assert from "node:assert/strict";
import { decodeDelivery, type RawDelivery } from "./delivery.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const raw = (routingKey: string, content: string, more: Partial<RawDelivery> = {}): RawDelivery => ({
  routingKey,
  content: bytes(content),
  ...more,
});

Deno.test("an invoke body in JSON is parsed and the messageId becomes the envelope id", () => {
  const d = decodeDelivery(
    raw("sl_t/blog_queuing/invoke", '{"method":"blog/queues/processor","params":{"data":"1,2,3:4"}}', {
      messageId: "m-1",
    }),
    1000,
  );
  assert.deepEqual(d, {
    token: "sl_t",
    channel: "blog_queuing",
    kind: "invoke",
    body: { method: "blog/queues/processor", params: { data: "1,2,3:4" } },
    unparsedText: false,
    id: "m-1",
  });
});

Deno.test("a bare CSV invoke body is kept as text for the channel's default script, marked as not JSON", () => {
  const csv = decodeDelivery(raw("t/blog_queuing/invoke", "21.5,1.2,45.5:-73.5"), 1000);
  assert.deepEqual([csv.body, csv.unparsedText], ["21.5,1.2,45.5:-73.5", true]);
  const declared = decodeDelivery(raw("t/c/invoke", '{"x":1}', { contentType: "text/csv" }), 1000);
  assert.deepEqual([declared.body, declared.unparsedText], ['{"x":1}', false], "text on purpose");
  assert.equal(decodeDelivery(raw("t/c/invoke", '"1,2"'), 1000).unparsedText, false, "a JSON string");
});

Deno.test("an invoke body that looks like JSON but is not, or is declared JSON, is malformed", () => {
  assert.throws(() => decodeDelivery(raw("t/c/invoke", "{not json"), 1000), { code: "malformed_json" });
  assert.throws(() => decodeDelivery(raw("t/c/invoke", "1,2", { contentType: "application/json" }), 1000), {
    code: "malformed_json",
  });
  assert.throws(() => decodeDelivery({ routingKey: "t/c/invoke", content: new Uint8Array([0xff, 0xfe]) }, 1000), {
    code: "malformed_json",
  });
});

Deno.test("a topic message is JSON when it parses and text otherwise, never refused for that", () => {
  assert.deepEqual(decodeDelivery(raw("t/alerts/messages", '{"level":3}'), 1000).body, { level: 3 });
  assert.equal(decodeDelivery(raw("t/alerts/messages", "pump 7 is hot"), 1000).body, "pump 7 is hot");
  assert.equal(decodeDelivery(raw("t/alerts/messages", "42", { contentType: "text/plain" }), 1000).body, "42");
  assert.equal(decodeDelivery(raw("t/alerts/messages", ""), 1000).body, null, "empty: null, as over MQTT");
});

Deno.test("the token may come in the sluice-token header, as text or bytes", () => {
  assert.equal(
    decodeDelivery(raw("alerts/messages", "x", { headers: { "sluice-token": "sl_h" } }), 1000).token,
    "sl_h",
  );
  assert.equal(
    decodeDelivery(raw("alerts/messages", "x", { headers: { "sluice-token": bytes("sl_b") } }), 1000).token,
    "sl_b",
  );
});

Deno.test("a message over the size limit or with a bad id is refused", () => {
  assert.throws(() => decodeDelivery(raw("t/c/messages", "x".repeat(11)), 10), { code: "payload_too_large" });
  assert.throws(() => decodeDelivery(raw("t/c/messages", "x", { messageId: "i".repeat(201) }), 10), {
    code: "validation_failed",
  });
});
