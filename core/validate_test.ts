import assert from "node:assert/strict";
import { z } from "zod";
import { validate } from "./validate.ts";

const Device = z.object({ id: z.string(), params: z.object({ channel: z.string() }).optional() });

Deno.test("a field left out is named as missing, with the type it needs", () => {
  assert.throws(() => validate(Device, { name: "pump-2" }, "body"), {
    name: "ValidationError",
    message: "Invalid body.id: missing (expected string)",
  });
  assert.throws(() => validate(Device, { id: "p", params: {} }, "body"), {
    message: "Invalid body.params.channel: missing (expected string)",
  });
});

Deno.test("a field of the wrong type keeps zod's reason, which says what it got", () => {
  assert.throws(() => validate(Device, { id: 5 }, "body"), {
    message: "Invalid body.id: Invalid input: expected string, received number",
  });
  assert.throws(() => validate(Device, { id: null }, "body"), {
    message: "Invalid body.id: Invalid input: expected string, received null",
  });
  assert.throws(() => validate(Device, "x", "body"), { message: /^Invalid body: Invalid input: expected object/ });
});

Deno.test("a required field of any type left out is missing, without zod's 'nonoptional'", () => {
  const Publish = z.object({ channel: z.string(), message: z.unknown() });
  assert.throws(() => validate(Publish, { channel: "c" }, "params"), { message: "Invalid params.message: missing" });
});
