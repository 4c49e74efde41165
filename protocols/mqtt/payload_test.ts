import assert from "node:assert/strict";
import { SluiceError } from "../../core/errors.ts";
import { decodePayload, encodeMessage } from "./payload.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("JSON payloads are parsed", () => {
  assert.deepEqual(decodePayload("invoke", bytes('{"method":"a/b","params":{"data":"1,2"}}')), {
    body: { method: "a/b", params: { data: "1,2" } },
    json: true,
  });
  assert.deepEqual(decodePayload("message", bytes("42")), { body: 42, json: true });
});

Deno.test("topic messages that are not JSON are kept as text", () => {
  assert.deepEqual(decodePayload("message", bytes("pump 3 is hot")), { body: "pump 3 is hot", json: false });
  assert.deepEqual(decodePayload("message", bytes("{oops")), { body: "{oops", json: false });
  assert.deepEqual(decodePayload("message", new Uint8Array()), { body: null, json: true });
});

Deno.test("a bare CSV invoke payload stays text; broken JSON is malformed", () => {
  assert.deepEqual(decodePayload("invoke", bytes("21.5,1.2,45.5:-73.5,2026-11-25T10:00:00Z")), {
    body: "21.5,1.2,45.5:-73.5,2026-11-25T10:00:00Z",
    json: false,
  });
  assert.throws(
    () => decodePayload("invoke", bytes('{"method": ')),
    (e) => e instanceof SluiceError && e.code === "malformed_json",
  );
});

Deno.test("binary that is not UTF-8 is refused", () => {
  assert.throws(
    () => decodePayload("message", new Uint8Array([0xff, 0xfe, 0x00])),
    (e) => e instanceof SluiceError && e.code === "malformed_json",
  );
});

Deno.test("messages go out as text or JSON", () => {
  assert.equal(new TextDecoder().decode(encodeMessage("hi")), "hi");
  assert.equal(new TextDecoder().decode(encodeMessage({ a: 1 })), '{"a":1}');
  assert.equal(new TextDecoder().decode(encodeMessage(null)), "null");
});
