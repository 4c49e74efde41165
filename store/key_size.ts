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
