/** A local stand-in for the weather API: answers `current.temperature_2m`, counts calls. */
export interface FakeWeather {
  readonly url: string;
  readonly calls: URL[];
  /** `ok` (default), `fail` (500) or `hang` (never answers). */
  mode: "ok" | "fail" | "hang";
  temperature: number;
  close(): Promise<void>;
}

export function fakeWeather(): FakeWeather {
  const hanging = new Set<() => void>();
  const state: FakeWeather = {
    url: "",
    calls: [],
    mode: "ok",
    temperature: 4.5,
    close: async () => {
      for (const h of hanging) h();
      await server.shutdown();
    },
  };
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    state.calls.push(new URL(req.url));
    if (state.mode === "fail") return new Response("down", { status: 500 });
    if (state.mode === "hang") {
      return new Promise((resolve) => {
        const h = () => resolve(new Response("late", { status: 504 }));
        hanging.add(h);
        setTimeout(() => (hanging.delete(h), h()), 5000);
      });
    }
    return Response.json({ current: { temperature_2m: state.temperature } });
  });
  (state as { url: string }).url = `http://127.0.0.1:${server.addr.port}/v1/forecast`;
  return state;
}
