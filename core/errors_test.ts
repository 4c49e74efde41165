import assert from "node:assert/strict";
import { describeError } from "./errors.ts";

Deno.test("an error's cause is described after its message, once", () => {
  const inner = new TypeError("Bad CSV on line 2");
  assert.equal(
    describeError(new Error("Reading refused", { cause: inner })),
    "Reading refused (cause: Bad CSV on line 2)",
  );
  assert.equal(
    describeError(new Error("Reading refused: Bad CSV on line 2", { cause: inner })),
    "Reading refused: Bad CSV on line 2",
  );
  assert.equal(describeError(new Error("Outer", { cause: "a string" })), 'Outer (cause: Non-error thrown: "a string")');
  assert.equal(describeError(new Error("No cause")), "No cause");
});

Deno.test("a message Deno coloured for a terminal is described without its escape codes", () => {
  const err = new TypeError(
    'Module not found "file:///x/typo.ts".\n    at \x1b[0m\x1b[36mfile:///x/manifest.ts\x1b[0m:\x1b[0m\x1b[33m4\x1b[0m',
  );
  assert.equal(describeError(err), 'Module not found "file:///x/typo.ts".\n    at file:///x/manifest.ts:4');
});

Deno.test("things thrown that are not errors are described as such", () => {
  assert.equal(describeError("oops"), 'Non-error thrown: "oops"');
  assert.equal(describeError({ code: 42 }), 'Non-error thrown: {"code":42}');
  assert.equal(describeError(10n), "Non-error thrown");
});
