import { ValidationError } from "./errors.ts";

/**
 * The deepest nesting of arrays and objects a message may have. KV's serializer and the workers'
 * structured clone recurse once per level: a few thousand levels (a 12 KB body) overflow the stack.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Returns `value`, or throws a `ValidationError` when it nests deeper than `MAX_JSON_DEPTH` or holds a number
 * JSON cannot carry (`1e400` parses to Infinity, which would reach subscribers and scripts as `null`).
 */
export function checkJson<T>(value: T, what = "Message"): T {
  const problem = problemOf(value, MAX_JSON_DEPTH);
  if (problem) throw new ValidationError(`${what} ${problem}`);
  return value;
}

function problemOf(value: unknown, levels: number): string | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) ? undefined : "holds a number too large for JSON (beyond ±1.8e308)";
  }
  if (typeof value !== "object" || value === null) return undefined;
  if (levels === 0) return `nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels`;
  if (Array.isArray(value)) {
    for (const v of value) {
      const problem = problemOf(v, levels - 1);
      if (problem) return problem;
    }
    return undefined;
  }
  for (const k in value) {
    const problem = problemOf((value as Record<string, unknown>)[k], levels - 1);
    if (problem) return problem;
  }
  return undefined;
}
