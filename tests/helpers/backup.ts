/** Runs `deno task backup`'s entry point as its own process, as an operator would, on this Deno. */
export async function runBackup(
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const root = new URL("../../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    // The task's permissions (deno.json), no more: the copy must work with these.
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--unstable-kv", `${root}backup.ts`, ...args],
    env: { NO_COLOR: "1", ...env },
    clearEnv: true,
    cwd: cwd ?? root,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
