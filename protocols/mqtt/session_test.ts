import assert from "node:assert/strict";
import { systemClock } from "../../core/clock.ts";
import { DeviceDirectory } from "../../store/device_directory.ts";
import { AuthThrottle } from "../../core/auth_throttle.ts";
import { loadAdminToken } from "../../store/admin_token.ts";
import { authenticateConnect, clientIdProblem, type ConnectAuthOptions, sessionClientId } from "./session.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

async function withDirectory(fn: (options: ConnectAuthOptions, token: string) => Promise<void>) {
  const kv = await Deno.openKv(":memory:");
  try {
    const devices = new DeviceDirectory(kv, systemClock);
    const { token } = await devices.create("pump-1");
    const admin = await loadAdminToken(kv, "admin-secret-0123456789");
    await fn({ admin, devices, anonymousConnect: false }, token);
  } finally {
    kv.close();
  }
}

Deno.test("CONNECT: device id and its own token open a device session; anything else is refused", async () => {
  await withDirectory(async (options, token) => {
    const ok = await authenticateConnect(options, "pump-1", bytes(token));
    assert.deepEqual(ok, { ok: true, session: { principal: { kind: "device", id: "pump-1" }, revoked: false } });
    assert.deepEqual(await authenticateConnect(options, "pump-2", bytes(token)), { ok: false, returnCode: 4 });
    assert.deepEqual(await authenticateConnect(options, "pump-1", bytes("sl_wrong")), { ok: false, returnCode: 4 });
    assert.deepEqual(await authenticateConnect(options, "pump-1", undefined), { ok: false, returnCode: 4 });
    const admin = await authenticateConnect(options, "admin", bytes("admin-secret-0123456789"));
    assert.ok(admin.ok && admin.session.principal?.kind === "admin");
  });
});

Deno.test("CONNECT without credentials needs MQTT_ANONYMOUS_CONNECT", async () => {
  await withDirectory(async (options) => {
    assert.deepEqual(await authenticateConnect(options, undefined, undefined), { ok: false, returnCode: 5 });
    const anonymous = await authenticateConnect({ ...options, anonymousConnect: true }, undefined, undefined);
    assert.ok(anonymous.ok && anonymous.session.principal?.kind === "anonymous");
  });
});

Deno.test("broker client ids are namespaced by who connected", () => {
  const device = { principal: { kind: "device", id: "pump-1" }, revoked: false } as const;
  const anonymous = { principal: { kind: "anonymous" }, revoked: false } as const;
  assert.equal(sessionClientId(device, "gw"), "d:pump-1/gw");
  assert.notEqual(sessionClientId(anonymous, "gw"), sessionClientId(device, "gw"));
});

Deno.test("a device whose id extends another's with ':' cannot take over that device's sessions", () => {
  const site = { principal: { kind: "device", id: "site" }, revoked: false } as const;
  const siteP1 = { principal: { kind: "device", id: "site:p1" }, revoked: false } as const;
  assert.notEqual(sessionClientId(site, "p1:gw"), sessionClientId(siteP1, "gw"));
  assert.notEqual(sessionClientId(siteP1, "gw:x"), sessionClientId(site, "p1:gw:x"));
});

Deno.test("wrong CONNECT credentials count against the address; past the limit even the right ones are refused", async () => {
  await withDirectory(async (options, token) => {
    const throttle = new AuthThrottle(systemClock, { freeFailures: 5, blockAfter: 2, windowMs: 60_000, maxDelayMs: 0 });
    const throttled = { ...options, throttle };
    assert.deepEqual(await authenticateConnect(throttled, "pump-1", bytes("sl_a"), "10.0.0.1"), {
      ok: false,
      returnCode: 4,
    });
    assert.deepEqual(await authenticateConnect(throttled, undefined, undefined, "10.0.0.1"), {
      ok: false,
      returnCode: 5,
    });
    assert.equal(throttle.blocked("10.0.0.1"), false, "no credentials is not a guess");
    assert.deepEqual(await authenticateConnect(throttled, "pump-1", bytes("sl_b"), "10.0.0.1"), {
      ok: false,
      returnCode: 4,
    });
    assert.deepEqual(await authenticateConnect(throttled, "pump-1", bytes(token), "10.0.0.1"), {
      ok: false,
      returnCode: 5,
    });
    const elsewhere = await authenticateConnect(throttled, "pump-1", bytes(token), "10.0.0.2");
    assert.ok(elsewhere.ok, "other addresses are not affected");
  });
});

Deno.test("a client id with ill-formed UTF-8 (decoded as U+FFFD) or U+0000 is not taken", () => {
  assert.equal(clientIdProblem("gateway-7"), null);
  assert.equal(clientIdProblem("пункт-7"), null);
  assert.match(clientIdProblem("a\uFFFD(")!, /UTF-8/);
  assert.match(clientIdProblem("a\u0000b")!, /U\+0000/);
});
