import assert from "node:assert/strict";
import { checkDepth, MAX_JSON_DEPTH } from "./json_depth.ts";
import { ValidationError } from "./errors.ts";

const nested = (levels: number) => JSON.parse("[".repeat(levels) + "]".repeat(levels));

Deno.test("values nested up to the limit pass, deeper ones are refused with a validation error", () => {
  assert.deepEqual(checkDepth({ a: [1, { b: "x" }] }), { a: [1, { b: "x" }] });
  assert.ok(checkDepth(nested(MAX_JSON_DEPTH)));
  assert.throws(() => checkDepth(nested(MAX_JSON_DEPTH + 1)), ValidationError);
  assert.throws(() => checkDepth({ deep: nested(6000) }), /deeper than 64 levels/);
  assert.equal(checkDepth("text"), "text");
  assert.equal(checkDepth(null), null);
});
