import { MalformedJsonError, PayloadTooLargeError, SluiceError, ValidationError } from "../../core/errors.ts";
import { checkJson } from "../../core/json_check.ts";

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** How a body read is bounded in time. */
export interface BodyDeadline {
  /** `read`, or a refusal once it has taken too long (its rest is not waited for). */
  within<T>(read: Promise<T>): Promise<T>;
}

/** Reads wait for their body as long as it takes. */
export const NO_DEADLINE: BodyDeadline = { within: (read) => read };

/**
 * `BODY_TIMEOUT`: how long a request body may take to arrive. `Deno.serve` has no body timeout: a client trickling its
 * body held its request, one of `MAX_HTTP_IN_FLIGHT`, for as long as it liked, and fifty of them kept every other
 * request out. The reads under way are checked by one timer the server owns (`close` stops it), not a timer a request.
 */
export class BodyDeadlines implements BodyDeadline {
  readonly #reading = new Set<{ readonly by: number; readonly giveUp: () => void }>();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(readonly timeoutMs: number) {
    this.#timer = setInterval(() => this.#check(), Math.min(250, timeoutMs / 4));
    Deno.unrefTimer(this.#timer);
  }

  within<T>(read: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = {
        by: Date.now() + this.timeoutMs,
        giveUp: () =>
          reject(
            new ValidationError(`Body not received within ${this.timeoutMs / 1000} s (BODY_TIMEOUT): send it at once`),
          ),
      };
      this.#reading.add(entry);
      read.then(
        (value) => (this.#reading.delete(entry), resolve(value)),
        (err) => (this.#reading.delete(entry), reject(err)),
      );
    });
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #check(): void {
    const now = Date.now();
    for (const r of this.#reading) if (r.by <= now) this.#reading.delete(r), r.giveUp();
  }
}

/** Reads a request body as text, refusing more than `max` bytes without reading them all. */
export async function readText(req: Request, max: number, deadline = NO_DEADLINE): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > max) throw tooLarge(`${declared} bytes`, max);
  if (!req.body) return "";
  const format = compression(req.headers.get("content-encoding"));
  let bytes: Uint8Array;
  try {
    // A declared length (within the limit) is the body's length: read it in one go. A compressed body is read as
    // it unpacks, the limit counting what it unpacks to: a small body that unpacks to gigabytes stops at the limit.
    const read = format
      ? readCapped(req.body.pipeThrough(new DecompressionStream(format)), max)
      : Number.isInteger(declared)
      ? req.arrayBuffer().then((b) => new Uint8Array(b))
      : readCapped(req.body, max);
    bytes = await deadline.within(read);
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    if (format && err instanceof TypeError) {
      throw new ValidationError(`Body is not valid ${format} data (Content-Encoding: ${format})`);
    }
    // The client went away mid-body or broke its chunked encoding: its mistake, not an internal error.
    throw new ValidationError("Body could not be read to its end (connection closed or broken chunked encoding)");
  }
  if (bytes.byteLength > max) throw tooLarge(`${bytes.byteLength} bytes`, max);
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new MalformedJsonError("Body is not valid UTF-8");
  }
}

/**
 * The format a `Content-Encoding` names (null: none, or `identity`); one Sluice cannot unpack is refused. Not deflate:
 * its stream has no length or checksum, and Deno's `DecompressionStream` gives a body cut short as the part that came
 * (an unclosed zlib writer's two bytes read as no body at all), where gzip's trailer shows the cut.
 */
function compression(encoding: string | null): "gzip" | null {
  const name = encoding?.trim().toLowerCase() ?? "";
  if (name === "" || name === "identity") return null;
  if (name === "gzip" || name === "x-gzip") return "gzip";
  const given = JSON.stringify(encoding!.slice(0, 40));
  throw new ValidationError(`Content-Encoding ${given} is not supported: send the body uncompressed, or gzip`);
}

/** Reads a body of unknown length, refusing more than `max` bytes without reading them all. */
async function readCapped(body: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge(`more than ${max} bytes`, max); // the rest is not read
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) bytes.set(c, at), at += c.byteLength;
  return bytes;
}

/** Reads a JSON body whatever its Content-Type says; an empty body is `undefined`. */
export async function readBody(req: Request, max: number, deadline = NO_DEADLINE): Promise<unknown> {
  const text = await readText(req, max, deadline);
  if (text.trim() === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new MalformedJsonError(
      `Body is not valid JSON: ${err instanceof Error ? err.message : String(err)}${notJsonHint(text.trim())}`,
    );
  }
  return checkJson(value, "Body");
}

/**
 * How to send text that does not even start like JSON: form fields (`curl -d a=1&b=2`) as a JSON object, anything
 * else (most likely a bare CSV reading) as a JSON string. The suggestion is the whole text, or says it is cut.
 */
function notJsonHint(text: string): string {
  if (/^[\[{"]/.test(text)) return "";
  if (/^[\w.-]+=[^&]*(&[\w.-]+=[^&]*)*$/.test(text)) {
    const fields = JSON.stringify(Object.fromEntries(new URLSearchParams(text)));
    return ` (form fields are not read: send a JSON object, ${fields.length > 120 ? "{…}" : fields})`;
  }
  const what = text.includes(",") ? "a bare CSV reading" : "text";
  const quoted = text.length > 80 ? `${JSON.stringify(text.slice(0, 80)).slice(0, -1)}…"` : JSON.stringify(text);
  return ` (${what} goes as a JSON string: ${quoted})`;
}

function tooLarge(size: string, max: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`Body is ${size}, over the limit of ${max} (MAX_BODY_BYTES)`);
}
