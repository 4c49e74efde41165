/** Runs `fn` with the process's time zone set to `tz` (as a server elsewhere would have), then puts it back. */
export async function inTimeZone<T>(tz: string, fn: () => T | Promise<T>): Promise<T> {
  const before = Deno.env.get("TZ");
  try {
    Deno.env.set("TZ", tz);
    return await fn();
  } finally {
    if (before === undefined) Deno.env.delete("TZ");
    else Deno.env.set("TZ", before);
  }
}
