/** The bytes a local KV takes on disk: its SQLite file and its write-ahead log (a missing one: 0). */
export async function kvFileBytes(path: string): Promise<{ data: number; wal: number }> {
  const size = (p: string) => Deno.stat(p).then((s) => s.size, () => 0);
  const [data, wal] = await Promise.all([size(path), size(`${path}-wal`)]);
  return { data, wal };
}
