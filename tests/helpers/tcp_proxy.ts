/** A TCP proxy a test can cut and restore, to take a broker away from Sluice and give it back. */
export interface TcpProxy {
  readonly port: number;
  /** Drops every connection and refuses new ones until `restore()`. */
  cut(): void;
  restore(): void;
  close(): void;
}

/** Forwards 127.0.0.1:<port> to `target`. */
export function tcpProxy(target: { hostname: string; port: number }): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let up = true;
  const drop = (c: Deno.Conn) => {
    open.delete(c);
    try {
      c.close();
    } catch { /* already closed */ }
  };
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
      client.readable.pipeTo(server.writable).catch(() => {}).finally(end);
      server.readable.pipeTo(client.writable).catch(() => {}).finally(end);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut() {
      up = false;
      for (const c of [...open]) drop(c);
    },
    restore() {
      up = true;
    },
    close() {
      this.cut();
      listener.close();
    },
  };
}
