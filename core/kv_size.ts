/** A string's length in UTF-8 bytes, without encoding it (a lone surrogate counts 3, as its U+FFFD). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) n += 2, i++; // 4 for 2 units
    else n += 2;
  }
  return n;
}

/** Whether a string is over `max` UTF-8 bytes: counted only when its length alone cannot tell. */
export function utf8Over(s: string, max: number): boolean {
  return s.length > max || (s.length * 3 > max && utf8Length(s) > max);
}

/** A key's size, roughly as KV counts it (no JSON needed). */
export function keySize(key: Deno.KvKey): number {
  let n = 2;
  for (const part of key) n += typeof part === "string" ? part.length + 2 : 9;
  return n;
}

/** A string that tells keys apart (cheaper than JSON for the usual string and number parts). */
export function keyId(key: Deno.KvKey): string {
  let id = "";
  for (const part of key) {
    id += typeof part === "string"
      ? `s${part.length}:${part}`
      : typeof part === "number"
      ? `n${part};`
      : `x${JSON.stringify(part, (_k, v) => typeof v === "bigint" ? `${v}n` : v)};`;
  }
  return id;
}

/**
 * A value's size as KV stores it (V8's serializer), an upper bound without serializing: a string
 * takes a byte a character, two when any is outside Latin-1; a number that is no small integer
 * takes 9 bytes ("0.5" and "-0" included, which JSON counts as 3 and 2 characters); an array read
 * back from KV may be written with each element's index (1.3 × for an array of numbers).
 * JSON's length can undercount it by more than 2×: size checks against KV's limits use this.
 */
export function valueSize(value: unknown): number {
  return 3 + sizeOf(value, 0);
}

function sizeOf(v: unknown, depth: number): number {
  switch (typeof v) {
    case "string":
      return stringSize(v);
    case "number":
      return Number.isInteger(v) && Math.abs(v) < 2 ** 30 && !Object.is(v, -0) ? 1 + varint(2 * Math.abs(v)) : 9;
    case "boolean":
    case "undefined":
      return 1;
    case "bigint":
      return 10 + Math.ceil(v.toString(16).length / 2);
    case "object": {
      if (v === null) return 1;
      if (depth > 200) return 1; // KV refuses deeper values on its own
      if (v instanceof Uint8Array) return 12 + v.byteLength;
      if (v instanceof Date) return 9;
      if (Array.isArray(v)) {
        // An array V8 read back (from KV, or a worker's message) may be written sparse: each element with its index.
        let n = 3 + 2 * varint(v.length);
        for (let i = 0; i < v.length; i++) n += 1 + varint(2 * i) + sizeOf(v[i], depth + 1);
        return n;
      }
      let n = 2, count = 0;
      for (const [k, item] of Object.entries(v)) n += stringSize(k) + sizeOf(item, depth + 1), count++;
      return n + varint(count);
    }
    default:
      return 1;
  }
}

function stringSize(s: string): number {
  let twoByte = false;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) {
      twoByte = true;
      break;
    }
  }
  const bytes = twoByte ? 2 * s.length : s.length;
  return 2 + varint(bytes) + bytes; // a tag, the length, and one byte of padding a two-byte string may take
}

/** The bytes of a base-128 varint. */
function varint(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : n < 268_435_456 ? 4 : 5;
}
