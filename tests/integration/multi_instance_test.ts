import assert from "node:assert/strict";
import { pumpStream } from "../../core/streams.ts";
import type { Server } from "../../server.ts";
import { keys } from "../../store/keys.ts";
import { ADMIN, deployInstance, integration, waitFor } from "../helpers/sluice.ts";

const DEVICES = 12, PER_DEVICE = 40, LEASE_TTL_MS = 2000;

/** An instance with a short lease, so a stopped one's partitions are taken over within the test. */
function instance(kv: Deno.Kv, kvPath: string): Promise<Server> {
  return deployInstance(kv, kvPath, { RETRY_BASE_MS: "50" }, { leaseTtlMs: LEASE_TTL_MS });
}

integration(
  "three instances on one KV split the work; a stopped one's partitions are taken over in < 5 s",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-multi-" });
    const kv = await Deno.openKv(`${dir}/shared.kv`);
    const servers = [
      await instance(kv, `${dir}/shared.kv`),
      await instance(kv, `${dir}/shared.kv`),
      await instance(kv, `${dir}/shared.kv`),
    ];
    const [a, b, c] = servers as [Server, Server, Server];
    let stoppedAt = 0;
    try {
      const tokens: string[] = [];
      for (let d = 0; d < DEVICES; d++) {
        const res = await fetch(`${servers[d % 3]!.url}/admin/devices`, {
          method: "POST",
          headers: { authorization: `Bearer ${ADMIN}` },
          body: JSON.stringify({ id: `m${d}` }),
        });
        assert.equal(res.status, 201);
        tokens.push((await res.json()).token);
      }
      let acked = 0, sent = 0;
      const alive = () => servers.filter((s) => s !== c || stoppedAt === 0);
      const drive = async (d: number) => {
        for (let n = 0; n < PER_DEVICE; n++) {
          for (let attempt = 0;; attempt++) {
            const target = alive()[(d + attempt) % alive().length]!;
            sent++;
            try {
              const res = await fetch(`${target.url}/channels/blog_queuing/invoke`, {
                method: "POST",
                headers: { authorization: `Bearer ${tokens[d]}` },
                body: JSON.stringify({
                  method: "blog/queues/processor",
                  params: { data: `${n},1,1:1,2026-11-25T10:00:00Z` },
                  id: `m${d}-${n}`,
                }),
              });
              await res.body?.cancel();
              if (res.status === 202) break;
            } catch { /* that instance is gone: try another */ }
            await new Promise((r) => setTimeout(r, 20));
          }
          acked++;
          await new Promise((r) => setTimeout(r, 15));
        }
      };
      const driving = Promise.all(Array.from({ length: DEVICES }, (_, d) => drive(d)));

      await waitFor(() => acked >= (DEVICES * PER_DEVICE) / 3, 30_000, "a third acknowledged");
      // Stop C dead, without releasing anything, at a moment it holds partitions.
      const held: string[] = [];
      await waitFor(
        async () => {
          for await (const e of kv.list<{ owner: string }>({ prefix: ["lease"] })) {
            if (e.value.owner === c.sluice.instance) held.push(String(e.key[1]));
          }
          return held.length > 0;
        },
        10_000,
        "C holding a partition",
      );
      stoppedAt = Date.now();
      await c.close({ abandon: true });
      const heldDevices = held.map((name) => name.split("/").at(-1)!);
      const versions = new Map<string, number>();
      for (const d of heldDevices) versions.set(d, (await kv.get<number>(keys.head(pumpStream(d)))).value ?? 0);

      // Takeover: each partition C held moves on (it still gets messages) on another instance.
      const takeover = new Map<string, number>();
      await waitFor(
        async () => {
          for (const d of heldDevices) {
            if (takeover.has(d)) continue;
            const v = (await kv.get<number>(keys.head(pumpStream(d)))).value ?? 0;
            if (v > versions.get(d)!) takeover.set(d, Date.now() - stoppedAt);
          }
          return takeover.size === heldDevices.length;
        },
        20_000,
        "takeover of the stopped instance's partitions",
      );
      await driving;
      for (let d = 0; d < DEVICES; d++) {
        await waitFor(
          async () => ((await kv.get<number>(keys.head(pumpStream(`m${d}`)))).value ?? 0) >= PER_DEVICE,
          30_000,
          `m${d} done`,
        );
      }
      let processed = 0, duplicated = 0, outOfOrder = 0, lost = 0;
      for (let d = 0; d < DEVICES; d++) {
        const temps: number[] = [];
        for await (
          const e of kv.list<{ data: { reading: { temperature: number } } }>({
            prefix: keys.eventsOf(pumpStream(`m${d}`)),
          })
        ) {
          temps.push(e.value.data.reading.temperature);
        }
        processed += temps.length;
        duplicated += temps.length - new Set(temps).size;
        for (let k = 1; k < temps.length; k++) if (temps[k]! < temps[k - 1]!) outOfOrder++;
        for (let n = 0; n < PER_DEVICE; n++) if (!temps.includes(n)) lost++;
      }
      const worst = Math.max(0, ...takeover.values());
      console.log(
        `multi-instance: ${held.length} partitions taken over, worst after ${worst} ms; sent ${sent}, acked ${acked}, ` +
          `processed ${processed}, lost ${lost}, duplicated ${duplicated}, out of order ${outOfOrder}`,
      );
      assert.ok(held.length > 0, "the stopped instance held partitions");
      assert.ok(worst < 5000, `takeover took ${worst} ms`);
      assert.equal(acked, DEVICES * PER_DEVICE);
      assert.deepEqual({ processed, lost, duplicated, outOfOrder }, {
        processed: DEVICES * PER_DEVICE,
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
      });
    } finally {
      for (const s of [a, b]) await s.close();
      if (!stoppedAt) await c.close();
      kv.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
);
