import assert from "node:assert/strict";
import { urlHost } from "./url_host.ts";

Deno.test("a listening address becomes a URL host: every interface is localhost, IPv6 goes in brackets", () => {
  assert.equal(urlHost("0.0.0.0"), "localhost");
  assert.equal(urlHost("::"), "localhost");
  assert.equal(urlHost("::1"), "[::1]");
  assert.equal(urlHost("127.0.0.1"), "127.0.0.1");
  assert.equal(urlHost("example.org"), "example.org");
});
