import { ValidationError } from "./errors.ts";

/**
 * The deepest nesting of arrays and objects a message may have. KV's serializer and the workers'
 * structured clone recurse once per level: a few thousand levels (a 12 KB body) overflow the stack.
 */
export const MAX_JSON_DEPTH = 64;

/** Returns `value`, or throws a `ValidationError` when it nests deeper than `MAX_JSON_DEPTH`. */
export function checkDepth<T>(value: T, what = "Message"): T {
  if (deeper(value, MAX_JSON_DEPTH)) {
    throw new ValidationError(`${what} nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return value;
}

function deeper(value: unknown, levels: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (levels === 0) return true;
  if (Array.isArray(value)) return value.some((v) => deeper(v, levels - 1));
  for (const k in value) if (deeper((value as Record<string, unknown>)[k], levels - 1)) return true;
  return false;
}
