import { MalformedJsonError, PayloadTooLargeError } from "../../core/errors.ts";

/** Reads a request body as text, refusing more than `max` bytes without reading them all. */
export async function readText(req: Request, max: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > max) throw tooLarge(declared, max);
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(size, max);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) bytes.set(c, at), at += c.byteLength;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new MalformedJsonError("Body is not valid UTF-8");
  }
}

/** Reads a JSON body whatever its Content-Type says; an empty body is `undefined`. */
export async function readJson(req: Request, max: number): Promise<unknown> {
  const text = await readText(req, max);
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new MalformedJsonError(`Body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function tooLarge(size: number, max: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`Body is ${size} bytes, over the limit of ${max} (MAX_BODY_BYTES)`);
}
