import assert from "node:assert/strict";
import { freePort } from "../crash/child.ts";
import { integration, waitFor } from "../helpers/sluice.ts";

const root = new URL("../../", import.meta.url).pathname;

/** Tries an MQTT CONNECT without credentials: true once the broker answers with a CONNACK. */
async function mqttAnswers(port: number): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // CONNECT, MQTT 3.1.1, clean session, keepalive 10 s, client id "fd".
    await conn.write(new Uint8Array([0x10, 14, 0, 4, 77, 81, 84, 84, 4, 2, 0, 10, 0, 2, 102, 100]));
    const buf = new Uint8Array(4);
    const n = await Promise.race([conn.read(buf), new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
    return n !== null && buf[0] === 0x20;
  } finally {
    conn.close();
  }
}

integration(
  "at the open-file limit Sluice stays up, and HTTP and MQTT serve again once idle connections close",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-fds-" });
    const port = freePort(), mqttPort = freePort();
    const child = new Deno.Command("bash", {
      args: [
        "-c",
        'ulimit -n 256 && exec "$0" run --allow-all --unstable-kv --unstable-cron main.ts',
        Deno.execPath(),
      ],
      env: {
        PORT: String(port),
        MQTT_PORT: String(mqttPort),
        HOSTNAME: "127.0.0.1",
        KV_PATH: `${dir}/sluice.kv`,
        WEATHER_API_URL: "off",
        NO_COLOR: "1",
      },
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let output = "";
    const drain = async (s: ReadableStream<Uint8Array>) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) output += chunk;
    };
    const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
    let exited = false;
    const status = child.status.then((s) => (exited = true, s));
    const idle: Deno.Conn[] = [];
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 30_000, "Sluice to start");
      // Idle HTTP connections until Sluice runs out of file descriptors: its accept fails.
      for (let n = 0; n < 400; n++) {
        try {
          idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        } catch {
          break; // the listener is gone for now
        }
      }
      // The MQTT listener's accept fails too (idle MQTT connections stay 10 s before CONNECT).
      await waitFor(
        async () => {
          idle.push(await Deno.connect({ hostname: "127.0.0.1", port: mqttPort }));
          await new Promise((r) => setTimeout(r, 20));
          return output.includes("MQTT listener cannot accept");
        },
        8000,
        "the MQTT accept to fail",
      );
      await new Promise((r) => setTimeout(r, 1500)); // a try to listen again, still at the limit
      assert.equal(exited, false, output);

      for (const c of idle.splice(0)) c.close();
      await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 10_000, "HTTP to answer again");
      // Deno 2.9's server ends at a failed accept (Sluice listens again and says so); 2.5's takes the next one.
      if (output.includes("HTTP listener stopped")) {
        await waitFor(() => new RegExp(`HTTP listens on port ${port} again`).test(output), 5000, "the line saying so");
      }
      assert.ok(await mqttAnswers(mqttPort), "MQTT accepts again");
      assert.equal(exited, false, output);
    } finally {
      for (const c of idle) c.close();
      if (!exited) child.kill("SIGTERM");
      await status;
      await drained;
      await Deno.remove(dir, { recursive: true });
    }
  },
);
