import assert from "node:assert/strict";
import { forwardedClient } from "./route.ts";

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
