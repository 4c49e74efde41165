import type { z } from "zod";
import { ValidationError } from "./errors.ts";

/** What `schema` accepts of `value`, or a `ValidationError` that names where (`body.params.id`) and why. */
export function validate<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const issue = res.error.issues[0]!;
  const path = issue.path.length ? `${where}.${issue.path.map(String).join(".")}` : where;
  // zod says "Invalid input: expected string, received undefined" for a field left out: say it is missing.
  if (issue.code === "invalid_type" && issue.path.length && at(value, issue.path) === undefined) {
    // A required field of any type (`z.unknown()` made required) is "nonoptional" to zod: no type worth naming.
    const expected = issue.expected === "nonoptional" ? "" : ` (expected ${issue.expected})`;
    throw new ValidationError(`Invalid ${path}: missing${expected}`);
  }
  throw new ValidationError(`Invalid ${path}: ${issue.message}`);
}

/** The value at `path` inside `value`, or undefined where the path leaves it. */
function at(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const key of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}
