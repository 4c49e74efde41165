import assert from "node:assert/strict";
import type { Context } from "hono";
import { forwardedClient, remoteAddress } from "./route.ts";

Deno.test("X-Forwarded-For gives the last address before the trusted proxies, whatever a client wrote before it", () => {
  const proxies = ["10.0.0.5", "::1"];
  assert.equal(forwardedClient("203.0.113.7", proxies), "203.0.113.7");
  assert.equal(forwardedClient("1.1.1.1, 203.0.113.7", proxies), "203.0.113.7", "a client's own entry is ignored");
  assert.equal(forwardedClient("203.0.113.7, 10.0.0.5", proxies), "203.0.113.7", "through two proxies");
  assert.equal(forwardedClient("2001:db8::1,::1", proxies), "2001:db8::1");
  assert.equal(forwardedClient("10.0.0.5, ::1", proxies), null, "only proxies: no client named");
  assert.equal(forwardedClient(undefined, proxies), null);
  assert.equal(forwardedClient(" , ", proxies), null);
  assert.equal(forwardedClient("x".repeat(5000), proxies)!.length, 64, "a long entry is cut (it keys a map)");
});

Deno.test("a proxy that reaches a dual-stack listener over IPv4 (::ffff:127.0.0.1) is the trusted 127.0.0.1", () => {
  // With HOSTNAME=:: Deno gives an IPv4 peer as ::ffff:a.b.c.d: TRUSTED_PROXIES=127.0.0.1 never matched it.
  const request = (peer: string, forwarded: string) =>
    ({
      env: { remoteAddr: { hostname: peer } },
      req: { header: (name: string) => name === "x-forwarded-for" ? forwarded : undefined },
    }) as unknown as Context;
  assert.equal(remoteAddress(request("::ffff:127.0.0.1", "203.0.113.7"), ["127.0.0.1"]), "203.0.113.7");
  assert.equal(remoteAddress(request("::ffff:10.0.0.9", "203.0.113.7"), ["127.0.0.1"]), "10.0.0.9");
  assert.equal(forwardedClient("203.0.113.7, ::ffff:10.0.0.5", ["10.0.0.5"]), "203.0.113.7");
});
