import assert from "node:assert/strict";
import { checkJson, MAX_JSON_DEPTH } from "./json_check.ts";
import { ValidationError } from "./errors.ts";

const nested = (levels: number) => JSON.parse("[".repeat(levels) + "]".repeat(levels));

Deno.test("values nested up to the limit pass, deeper ones are refused with a validation error", () => {
  assert.deepEqual(checkJson({ a: [1, { b: "x" }] }), { a: [1, { b: "x" }] });
  assert.ok(checkJson(nested(MAX_JSON_DEPTH)));
  assert.throws(() => checkJson(nested(MAX_JSON_DEPTH + 1)), ValidationError);
  assert.throws(() => checkJson({ deep: nested(6000) }), /deeper than 64 levels/);
  assert.equal(checkJson("text"), "text");
  assert.equal(checkJson(null), null);
});

Deno.test("a number JSON cannot carry (1e400 parses to Infinity) is refused wherever it sits", () => {
  assert.throws(() => checkJson(JSON.parse("1e400")), /number too large for JSON/);
  assert.throws(() => checkJson(JSON.parse('{"a":[1,{"b":-1e400}]}'), "Body"), /^ValidationError: Body holds/);
  assert.deepEqual(checkJson(JSON.parse('{"a":1.7e308,"b":-0,"c":5e-324}')), { a: 1.7e308, b: -0, c: 5e-324 });
});
