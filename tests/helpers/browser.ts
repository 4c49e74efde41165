import { type BrowserContext, chromium, type Page } from "playwright-core";

/** Debian's Chromium (`apt-get install -y chromium`); never a downloaded browser build. */
export const CHROMIUM = "/usr/bin/chromium";

/** Where browser tests leave screenshots (git-ignored). */
export const ARTIFACTS = new URL("../artifacts/", import.meta.url);

/** A headless Chromium with a fresh profile; `close` removes the profile. */
export interface Browser {
  readonly context: BrowserContext;
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

/** Starts headless Chromium, or fails with how to install it (a browser test is never skipped). */
export async function launchChromium(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: the browser tests need it. Install it with ` +
        "`apt-get install -y chromium` (CI: `command -v chromium || apt-get install -y chromium`).",
    );
  }
  const profile = await Deno.makeTempDir({ prefix: "sluice-chromium-" });
  // Playwright passes --user-data-dir itself, and only through a persistent context.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    viewport: { width: 1280, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
    ],
  });
  context.setDefaultTimeout(30_000);
  return {
    context,
    newPage: () => context.newPage(),
    async close() {
      await context.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}
