/**
 * A page of a key prefix in key order: at most `limit` values, after the key `[...prefix, after]`
 * (the last of the page before); `more` says whether another page follows.
 */
export async function kvPage<T>(
  kv: Deno.Kv,
  prefix: Deno.KvKey,
  limit: number,
  after?: string,
): Promise<{ values: T[]; more: boolean }> {
  const values: T[] = [];
  const selector = after === undefined ? { prefix } : { prefix, start: [...prefix, after, ""] };
  for await (const e of kv.list<T>(selector, { limit: limit + 1 })) values.push(e.value);
  return { values: values.slice(0, limit), more: values.length > limit };
}
