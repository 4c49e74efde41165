import assert from "node:assert/strict";
import { ValidationError } from "./errors.ts";
import { normaliseInvoke, parseMessageId } from "./invoke_body.ts";

const csv = "21.5,1.2,45.5:-73.6,2026-11-25T10:00:00Z";

Deno.test("every accepted invoke shape becomes {method, params}", () => {
  const m = "blog/queues/processor";
  assert.deepEqual(normaliseInvoke({ method: m, params: { data: csv } }), { method: m, params: { data: csv } });
  assert.deepEqual(normaliseInvoke({ method: m, data: csv }), { method: m, params: { data: csv } });
  assert.deepEqual(normaliseInvoke({ method: m, params: { a: 1 }, data: csv }), {
    method: m,
    params: { a: 1, data: csv },
  });
  assert.deepEqual(normaliseInvoke(csv, m), { method: m, params: { data: csv } });
  assert.deepEqual(normaliseInvoke({ temperature: 1, id: "x" }, m), { method: m, params: { temperature: 1 }, id: "x" });
  assert.deepEqual(normaliseInvoke({ method: m, id: 7 }), { method: m, params: null, id: "7" });
});

Deno.test("malformed invoke bodies are refused with a clear message", () => {
  for (
    const bad of [null, 3, [1], true, { method: 5 }, { method: "../x" }, { method: "a", id: "" }, {
      method: "a",
      params: 3,
      data: "x",
    }, "csv"]
  ) {
    assert.throws(() => normaliseInvoke(bad), ValidationError, JSON.stringify(bad));
  }
});

Deno.test("message ids with a lone surrogate are refused, in the body and outside it", () => {
  const m = "blog/queues/processor";
  for (const id of ["a\ud800", "\udc00b"]) {
    assert.throws(() => normaliseInvoke({ method: m, id }), /well-formed Unicode/);
    assert.throws(() => parseMessageId(id), /well-formed Unicode/);
  }
  assert.equal(normaliseInvoke({ method: m, id: "a\ud83d\ude00" }).id, "a\u{1F600}");
});

Deno.test("an id that is neither text nor a whole number is refused with what an id must be", () => {
  const m = "app/x";
  for (const id of [1.5, true, {}, 1e300, -0.5]) {
    assert.throws(
      () => normaliseInvoke({ method: m, id }),
      /^ValidationError: Invalid invoke body: id must be 1–200 characters of text or a whole number/,
      JSON.stringify(id),
    );
  }
  assert.throws(() => normaliseInvoke({ method: m, id: "" }), /id Too small/, "an empty id says why");
});
