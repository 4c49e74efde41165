import assert from "node:assert/strict";
import { encodeTopicMessage } from "./republisher.ts";

const at = Date.parse("2026-11-25T10:00:00Z");

Deno.test("a JSON topic message goes out as JSON with its channel, seq and sender", () => {
  const { content, options } = encodeTopicMessage({
    channel: "alerts",
    seq: 7,
    message: { level: 3 },
    sender: "p1",
    at,
  });
  assert.equal(new TextDecoder().decode(content), '{"level":3}');
  assert.deepEqual(options, {
    persistent: true,
    contentType: "application/json",
    messageId: "alerts/7",
    timestamp: at / 1000,
    headers: { "sluice-seq": 7, "sluice-sender": "p1" },
  });
});

Deno.test("a text topic message goes out as the text itself", () => {
  const { content, options } = encodeTopicMessage({ channel: "a", seq: 1, message: "pump 7 is hot", sender: "p", at });
  assert.equal(new TextDecoder().decode(content), "pump 7 is hot");
  assert.equal(options.contentType, "text/plain");
});
