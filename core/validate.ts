import type { z } from "zod";
import { ValidationError } from "./errors.ts";

/** What `schema` accepts of `value`, or a `ValidationError` that names where (`body.params.id`) and why. */
export function validate<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const issue = res.error.issues[0]!;
  const path = issue.path.length ? `${where}.${issue.path.map(String).join(".")}` : where;
  throw new ValidationError(`Invalid ${path}: ${issue.message}`);
}
