import { z } from "zod";
import { ValidationError } from "./errors.ts";
import { SCRIPT_PATH } from "./names.ts";

/** An invoke body in its one normal form. */
export interface NormalInvoke {
  readonly method: string;
  readonly params: unknown;
  readonly id?: string;
}

/**
 * A message id: 1–200 characters, or a whole number (kept as its decimal text). It becomes a KV
 * key, and KV stores a lone surrogate as U+FFFD: ids that differ only there would be one id.
 */
export const MessageId = z.union([
  z.string().min(1).max(200).refine((s) => s.isWellFormed(), "must be well-formed Unicode (no lone surrogates)"),
  z.number().int().safe().transform(String),
], { error: "must be 1–200 characters of text or a whole number (up to 2^53 − 1)" });

/** A message id given as text (a header): `MessageId`'s string form. */
export const MessageIdText = MessageId.options[0];

const InvokeObject = z.object({
  method: z.string().min(1).max(200).regex(SCRIPT_PATH, "not a script path").optional(),
  params: z.unknown().optional(),
  data: z.unknown().optional(),
  id: MessageId.optional(),
});

/**
 * Normalises every accepted invoke shape: `{method, params}`, `{method, data}` (→ `params.data`),
 * `{method, params, data}`, a bare string (CSV) or an object without `method` for a channel with
 * a default script.
 */
export function normaliseInvoke(body: unknown, defaultScript?: string): NormalInvoke {
  if (body === undefined || body === null) throw new ValidationError("Invoke body is empty: send {method, params}");
  if (typeof body === "string") {
    if (!defaultScript) throw new ValidationError("Invoke body is text but the channel has no default script");
    return { method: defaultScript, params: { data: body } };
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new ValidationError(`Invoke body must be a JSON object, got ${describe(body)}`);
  }
  const parsed = InvokeObject.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ValidationError(`Invalid invoke body: ${issue.path.join(".") || "body"} ${issue.message}`);
  }
  const { method, params, data, id } = parsed.data;
  const chosen = method ?? defaultScript;
  if (!chosen) throw new ValidationError('Invoke body needs a "method" (the script to queue)');
  let merged: unknown;
  if (data === undefined) merged = params ?? (method ? null : withoutId(body));
  else if (params === undefined) merged = { data };
  else if (typeof params === "object" && params !== null && !Array.isArray(params)) merged = { ...params, data };
  else throw new ValidationError('Invoke body has both "data" and non-object "params"');
  return { method: chosen, params: merged, ...(id === undefined ? {} : { id }) };
}

function withoutId(body: object): unknown {
  const { id: _id, ...rest } = body as Record<string, unknown>;
  return rest;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

/** Checks a message id given outside the body (header, protocol property). */
export function parseMessageId(raw: unknown): string | undefined {
  if (raw === undefined || raw === null || raw === "") return undefined;
  const parsed = MessageId.safeParse(raw);
  if (!parsed.success) {
    throw new ValidationError("Message id must be 1–200 characters of well-formed Unicode, or a whole number");
  }
  return parsed.data;
}
