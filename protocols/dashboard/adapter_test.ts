import assert from "node:assert/strict";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { RouteDeps } from "../http/route.ts";
import { dashboardAdapter } from "./adapter.ts";

async function app(): Promise<OpenAPIHono> {
  const app = new OpenAPIHono();
  (await dashboardAdapter()).mount!(app, {} as RouteDeps);
  return app;
}

Deno.test("the dashboard page is served at / without a token, with a strict content security policy", async () => {
  const res = await (await app()).request("/");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
  assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  const html = await res.text();
  assert.match(html, /<script type="module" src="\/dashboard\/app.js"><\/script>/);
  assert.doesNotMatch(html, /(src|href)="https?:/, "no external resource");
});

Deno.test("every file of the dashboard is served, and an unchanged one answers 304", async () => {
  const a = await app();
  const names = [];
  for await (const e of Deno.readDir(new URL("./static/", import.meta.url))) {
    if (!e.name.includes("_test.") && e.name !== "index.html") names.push(e.name);
  }
  assert.ok(names.includes("app.js") && names.includes("style.css"));
  for (const name of names) {
    const res = await a.request(`/dashboard/${name}`);
    assert.equal(res.status, 200, name);
    assert.match(res.headers.get("content-type")!, name.endsWith(".css") ? /^text\/css/ : /^text\/javascript/);
    const etag = res.headers.get("etag")!;
    await res.body?.cancel();
    const again = await a.request(`/dashboard/${name}`, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304, name);
  }
});

Deno.test("an unknown dashboard file is a JSON 404", async () => {
  const res = await (await app()).request("/dashboard/secrets.ts");
  assert.equal(res.status, 404);
  assert.equal((await res.json()).error.code, "not_found");
});
