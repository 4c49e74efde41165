import type { Protocol } from "./crash_run.ts";

/** The HTTP sender: POST invoke with an id; acknowledged by the 202 (sent after the commit). */
export const httpProtocol: Protocol = {
  name: "http",
  connect: (sluice) =>
    Promise.resolve({
      send: async (_device, token, id, csv) => {
        const res = await fetch(`${sluice.url}/channels/blog_queuing/invoke`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ method: "blog/queues/processor", params: { data: csv }, id }),
        });
        await res.body?.cancel();
        if (res.status !== 202) throw new Error(`HTTP ${res.status}`);
      },
      close: () => Promise.resolve(),
    }),
};
