import assert from "node:assert/strict";
import { keys } from "./keys.ts";
import { LeaseManager } from "./leases.ts";

/** A KV whose atomic commits wait at a gate while it is shut (a slow KV, at a chosen moment). */
function gatedKv(kv: Deno.Kv) {
  let gate: Promise<void> | null = null, open = () => {};
  const waiting: Promise<unknown>[] = [];
  const wrapped = new Proxy(kv, {
    get(target, prop) {
      if (prop !== "atomic") {
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      }
      return () => {
        const op = target.atomic();
        const commit = op.commit.bind(op);
        op.commit = () => {
          const held = gate;
          if (!held) return commit();
          const landed = held.then(commit);
          waiting.push(landed);
          return landed;
        };
        return op;
      };
    },
  });
  return {
    kv: wrapped,
    shut: () => void (gate = new Promise((r) => open = r)),
    /** Lets new commits through at once; those already waiting stay held until `release`. */
    bypass: () => void (gate = null),
    release: () => open(),
    waiting,
  };
}

Deno.test("a lease taken again by its holder survives a renewal that was in flight", async () => {
  const kv = await Deno.openKv(":memory:");
  const gated = gatedKv(kv);
  let now = 0;
  const lost: string[] = [];
  const leases = new LeaseManager({
    kv: gated.kv,
    owner: "me",
    clock: { now: () => now },
    ttlMs: 300,
    onLost: (name) => lost.push(name),
  });
  try {
    assert.ok(!("heldFor" in await leases.acquire("p")));
    // The renewals lagged: by this instance's clock it may no longer act on the lease.
    now = 250;
    assert.equal(leases.held("p"), undefined);
    gated.shut();
    for (let i = 0; gated.waiting.length === 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(gated.waiting.length, 1, "a renewal is in flight");
    // Work arrives: the lane takes its lease again while that renewal is still on its way.
    gated.bypass();
    const again = await leases.acquire("p");
    assert.ok(!("heldFor" in again), "taken again");
    gated.release();
    await Promise.allSettled(gated.waiting);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(lost, [], "the lease taken again is not given up");
    assert.equal(leases.held("p"), again);
  } finally {
    gated.release();
    leases.abandon();
    kv.close();
  }
});

Deno.test("a holder that takes its lease again while a renewal lands keeps it without waiting a TTL", async () => {
  const kv = await Deno.openKv(":memory:");
  const gated = gatedKv(kv);
  let now = 0;
  const leases = new LeaseManager({ kv: gated.kv, owner: "me", clock: { now: () => now }, ttlMs: 300 });
  try {
    assert.ok(!("heldFor" in await leases.acquire("p")));
    now = 250;
    // A renewal is on its way when the lane takes its lease again: the renewal lands first.
    gated.shut();
    for (let i = 0; gated.waiting.length === 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    const again = leases.acquire("p");
    for (let i = 0; gated.waiting.length < 2 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(gated.waiting.length, 2, "a renewal and the acquire wait to commit");
    gated.release();
    const got = await again;
    assert.ok(!("heldFor" in got), `still its holder, got ${JSON.stringify(got)}`);
  } finally {
    gated.release();
    leases.abandon();
    kv.close();
  }
});

Deno.test("an abandoned instance renews none of its leases after it stopped", async () => {
  const kv = await Deno.openKv(":memory:");
  const gated = gatedKv(kv);
  let now = 0;
  const leases = new LeaseManager({ kv: gated.kv, owner: "me", clock: { now: () => now }, ttlMs: 300 });
  try {
    for (const name of ["a", "b", "c"]) assert.ok(!("heldFor" in await leases.acquire(name)));
    now = 100;
    gated.shut();
    for (let i = 0; gated.waiting.length === 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    // Stopped dead while a renewal was in flight: it may land, but no renewal starts after the stop.
    leases.abandon();
    now = 200;
    gated.bypass();
    gated.release();
    await new Promise((r) => setTimeout(r, 50));
    const expiries = () =>
      Promise.all(["a", "b", "c"].map(async (n) => (await kv.get<number>(keys.leaseExpiry(n))).value));
    assert.deepEqual(await expiries(), [400, 400, 400], "the renewal in flight at the stop");
    now = 300;
    await new Promise((r) => setTimeout(r, 250)); // more than two renewal intervals
    assert.deepEqual(await expiries(), [400, 400, 400]);
  } finally {
    gated.release();
    kv.close();
  }
});

Deno.test("hundreds of leases are renewed in a few commits, one round at a time, and none is lost", async () => {
  const kv = await Deno.openKv(":memory:");
  let commits = 0;
  const counted = new Proxy(kv, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (prop !== "atomic") return typeof v === "function" ? v.bind(target) : v;
      return () => (commits++, target.atomic());
    },
  });
  const lost: string[] = [];
  const leases = new LeaseManager({
    kv: counted,
    owner: "me",
    clock: { now: () => Date.now() },
    ttlMs: 1500,
    onLost: (name) => lost.push(name),
  });
  try {
    const names = Array.from({ length: 400 }, (_, i) => `p${i}`);
    for (const name of names) assert.ok(!("heldFor" in await leases.acquire(name)));
    commits = 0;
    await new Promise((r) => setTimeout(r, 1600)); // rounds every 500 ms: three or four in that time, past one TTL
    assert.deepEqual(lost, []);
    // Batched, 8 commits a round (one a lease would be 400 a round).
    assert.ok(commits <= 4 * 8, `${commits} commits for at most four rounds of 400 leases (8 a round)`);
    assert.ok(names.every((n) => leases.held(n)), "every lease still held");
    // One taken over meanwhile is found and lost; the others in its commit stay held.
    await kv.set(keys.lease("p7"), { owner: "other", since: 0 });
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(lost, ["p7"]);
    assert.equal(names.filter((n) => leases.held(n)).length, 399);
  } finally {
    await leases.releaseAll();
    kv.close();
  }
});
