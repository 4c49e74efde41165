import { NotFoundError } from "../../core/errors.ts";
import type { Adapter } from "../adapter.ts";
import { errorResponse } from "../http/errors.ts";

/** The page's files, served as written: plain HTML, CSS and ES modules, no build step. */
const FILES: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "api.js": "text/javascript; charset=utf-8",
  "dom.js": "text/javascript; charset=utf-8",
  "chart.js": "text/javascript; charset=utf-8",
  "pumps.js": "text/javascript; charset=utf-8",
  "pump.js": "text/javascript; charset=utf-8",
  "pump_history.js": "text/javascript; charset=utf-8",
  "channel.js": "text/javascript; charset=utf-8",
  "channels.js": "text/javascript; charset=utf-8",
  "channel_settings.js": "text/javascript; charset=utf-8",
  "dead_letters.js": "text/javascript; charset=utf-8",
  "devices.js": "text/javascript; charset=utf-8",
};

/** No third-party origin at all: the page talks to this Sluice only. */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface Asset {
  readonly body: string;
  readonly type: string;
  readonly etag: string;
}

/** Reads the page's files once (they ship beside this module, also on Deno Deploy). */
export async function loadDashboardAssets(): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  for (const [name, type] of Object.entries(FILES)) {
    const body = await Deno.readTextFile(new URL(`./static/${name}`, import.meta.url));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
    const etag = `"${Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("")}"`;
    assets.set(name, { body, type, etag });
  }
  return assets;
}

function serve(req: Request, asset: Asset): Response {
  const headers = {
    "content-type": asset.type,
    "cache-control": "no-cache",
    etag: asset.etag,
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
  };
  if (req.headers.get("if-none-match") === asset.etag) return new Response(null, { status: 304, headers });
  return new Response(asset.body, { headers });
}

/**
 * The live dashboard: `GET /` (open; every data call the page makes needs the admin token) and
 * its files under `GET /dashboard/…`.
 */
export async function dashboardAdapter(): Promise<Adapter> {
  const assets = await loadDashboardAssets();
  return {
    name: "dashboard",
    mount(app) {
      app.get("/", (c) => serve(c.req.raw, assets.get("index.html")!));
      app.get("/dashboard/:file", (c) => {
        const file = c.req.param("file");
        const asset = file === "index.html" ? undefined : assets.get(file);
        if (!asset) return errorResponse(new NotFoundError(`No dashboard file "${file.slice(0, 80)}"`));
        return serve(c.req.raw, asset);
      });
    },
    close: () => Promise.resolve(),
  };
}
