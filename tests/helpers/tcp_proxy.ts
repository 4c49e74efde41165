/** A TCP proxy a test can cut and restore, to take a broker away from Sluice and give it back. */
export interface TcpProxy {
  readonly port: number;
  /** Drops every connection and refuses new ones until `restore()`. */
  cut(): void;
  /**
   * Keeps every connection open but forwards nothing either way, as a broker that went silent
   * (TCP still up). What was swallowed is gone: `cut()` before `restore()` to start clean.
   */
  stall(): void;
  restore(): void;
  close(): void;
}

/** Forwards 127.0.0.1:<port> to `target`. */
export function tcpProxy(target: { hostname: string; port: number }): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let up = true;
  let stalled = false;
  const drop = (c: Deno.Conn) => {
    open.delete(c);
    try {
      c.close();
    } catch { /* already closed */ }
  };
  /** Passes bytes on unless stalled. */
  const gate = () =>
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (!stalled) controller.enqueue(chunk);
      },
    });
  (async () => {
    for await (const client of listener) {
      if (!up) {
        drop(client);
        continue;
      }
      let server: Deno.Conn;
      try {
        server = await Deno.connect(target);
      } catch {
        drop(client);
        continue;
      }
      open.add(client), open.add(server);
      const end = () => (drop(client), drop(server));
      client.readable.pipeThrough(gate()).pipeTo(server.writable).catch(() => {}).finally(end);
      server.readable.pipeThrough(gate()).pipeTo(client.writable).catch(() => {}).finally(end);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut() {
      up = false;
      for (const c of [...open]) drop(c);
    },
    stall() {
      stalled = true;
    },
    restore() {
      up = true;
      stalled = false;
    },
    close() {
      this.cut();
      listener.close();
    },
  };
}
