import assert from "node:assert/strict";
import { errorCause, ErrorCauses } from "./error_causes.ts";

Deno.test("causes of errors are one line per kind: HTTP errors by status and code", () => {
  const http = (status: number, body: string) => new Error(`HTTP ${status}: ${body}`);
  const rateLimited = JSON.stringify({ error: { code: "rate_limited", message: "Device sim-3 is over 200/s" } });
  assert.equal(errorCause(http(429, rateLimited)), "HTTP 429 rate_limited");
  assert.equal(errorCause(http(502, "<html>Bad gateway</html>")), "HTTP 502");
  assert.equal(
    errorCause(new Error("connection lost: Keepalive timeout\n    at x")),
    "connection lost: Keepalive timeout",
  );
  assert.equal(errorCause("plain"), "plain");
  // The brute-force throttle's 429 is for an address, not a device over its rate: said apart.
  const throttled = JSON.stringify({
    error: { code: "rate_limited", message: "Too many failed authentications from this address; try again in 5 s" },
  });
  assert.equal(
    errorCause(http(429, throttled)),
    "HTTP 429 rate_limited: too many failed authentications from this address (revoked or wrong tokens)",
  );
  // The client's own port is not part of the cause: one line for every such failure.
  const sending = (port: number) =>
    new Error(`error sending request from 127.0.0.1:${port} for http://127.0.0.1:1883/x (127.0.0.1:1883): boom`);
  assert.equal(errorCause(sending(51246)), errorCause(sending(40001)));
  assert.match(errorCause(sending(51246)), /from 127\.0\.0\.1 for http:\/\/127\.0\.0\.1:1883\/x/);
});

Deno.test('a failed fetch is counted by its reason, not as "fetch failed"', async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close(); // a port nothing listens on
  const refused = await fetch(`http://127.0.0.1:${listener.addr.port}/`).then(() => null, (err) => err);
  assert.ok(refused instanceof Error);
  assert.match(errorCause(refused), /Connection refused/);
  const wrapped = new TypeError("fetch failed", { cause: new Error("tcp connect error: Connection refused") });
  assert.equal(errorCause(wrapped), "tcp connect error: Connection refused");
});

Deno.test("causes are counted, the most frequent first, and only a new one is announced", () => {
  const causes = new ErrorCauses();
  assert.equal(causes.add(new Error("HTTP 429: {}")), "HTTP 429");
  assert.equal(causes.add(new Error("boom"), 3), "boom");
  assert.equal(causes.add(new Error("HTTP 429: <html>")), null);
  assert.deepEqual(causes.top(), [["boom", 3], ["HTTP 429", 2]]);
});
