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
  assert.equal(describeError(10n), "Non-error thrown: 10n");
  assert.equal(describeError(Symbol("s")), "Non-error thrown: Symbol(s)");
  assert.equal(describeError(() => 1), "Non-error thrown: a function (anonymous)");
  assert.equal(describeError(undefined), "Non-error thrown: undefined");
  assert.equal(describeError(Promise.resolve(1)), "Non-error thrown: a Promise (await it before throwing?)");
  assert.equal(describeError(new Map([[1, 2]])), "Non-error thrown: a Map");
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.equal(describeError(circular), "Non-error thrown: an Object");
  assert.equal(describeError({}), "Non-error thrown: {}");
  assert.equal(
    describeError(new AggregateError([new Error("a"), "b"], "")),
    'AggregateError (2 error(s): a; Non-error thrown: "b")',
  );
});
