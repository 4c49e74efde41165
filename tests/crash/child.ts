/** Sluice as a child process (`deno run main.ts`), to kill with SIGKILL and start again. */
export class SluiceProcess {
  #child: Deno.ChildProcess | null = null;
  #stderr: string[] = [];
  starts = 0;
  kills = 0;

  constructor(readonly port: number, readonly env: Record<string, string>) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The process id while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Starts Sluice and waits until /healthz says every part is up (`ok`: KV, and the MQTT listener
   * and AMQP consumer when configured), so a kill never lands before the protocols are serving.
   */
  async start(timeoutMs = 30_000): Promise<void> {
    const root = new URL("../../", import.meta.url).pathname;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "--unstable-kv", ...profiling(), `${root}main.ts`],
      env: { ...this.env, PORT: String(this.port), HOSTNAME: "127.0.0.1", NO_COLOR: "1" },
      stdout: "null",
      stderr: "piped",
      cwd: root,
    }).spawn();
    this.starts++;
    this.#drain(this.#child.stderr);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${this.url}/healthz`);
        const health = res.ok ? await res.json() : (await res.body?.cancel(), null);
        if (health?.status === "ok") return;
      } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`Sluice did not start within ${timeoutMs} ms:\n${this.#stderr.slice(-20).join("")}`);
  }

  /** kill -9: no chance to flush, close or hand anything back. */
  async kill(): Promise<void> {
    if (!this.#child) return;
    this.#child.kill("SIGKILL");
    await this.#child.status;
    this.#child = null;
    this.kills++;
  }

  /** A graceful stop (SIGTERM) and its exit code. */
  async stop(): Promise<number> {
    if (!this.#child) return 0;
    try {
      this.#child.kill("SIGTERM");
    } catch {
      const { code, signal } = await this.#child.status;
      throw new Error(`Sluice had exited by itself (code ${code}, signal ${signal}) before the stop:\n${this.log}`);
    }
    const status = await this.#child.status;
    this.#child = null;
    return status.code;
  }

  /** What the child wrote to stderr lately (for failure messages). */
  get log(): string {
    return this.#stderr.slice(-40).join("");
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.#stderr.push(chunk);
        if (this.#stderr.length > 200) this.#stderr.splice(0, 100);
      }
    } catch { /* killed */ }
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** `SLUICE_CPU_PROF=<dir>` in the environment: the child writes a V8 CPU profile there when it stops. */
function profiling(): string[] {
  const dir = Deno.env.get("SLUICE_CPU_PROF");
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}
