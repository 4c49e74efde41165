import assert from "node:assert/strict";
import { crashOptions } from "./cli.ts";

/** Runs `deno task test:crash`'s entry point with `args`, as the task does. */
async function crashMain(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--unstable-kv", new URL("./main.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("deno task test:crash --help prints its flags and exits 0, without starting anything", async () => {
  const { code, stdout } = await crashMain("--help");
  assert.equal(code, 0);
  assert.match(stdout, /^deno task test:crash \[--devices N \(20\)\] \[--per-device M \(300\)\] \[--kills K \(10\)\]/);
});

Deno.test("deno task test:crash with an unknown flag says so in one line and exits 2", async () => {
  const { code, stderr } = await crashMain("--bogus", "1");
  assert.equal(code, 2);
  assert.match(stderr, /^test:crash: Unknown option '--bogus'/);
  assert.doesNotMatch(stderr, /Uncaught|\n\s+at /);
});

Deno.test("test:crash flags are checked: whole numbers and known protocols", () => {
  assert.deepEqual(crashOptions([]), { devices: 20, perDevice: 300, kills: 10, protocols: ["http", "mqtt", "amqp"] });
  assert.deepEqual(crashOptions(["--devices", "3", "--per-device", "5", "--kills", "0", "--protocols", "http, mqtt"]), {
    devices: 3,
    perDevice: 5,
    kills: 0,
    protocols: ["http", "mqtt"],
  });
  assert.throws(() => crashOptions(["--devices", "abc"]), {
    message: '--devices must be a whole number ≥ 1, got "abc"',
  });
  assert.throws(() => crashOptions(["--per-device", "0"]), /--per-device must be a whole number ≥ 1/);
  assert.throws(() => crashOptions(["--protocols", "http,ws"]), {
    message: '--protocols: unknown protocol "ws" (known: http, mqtt, amqp)',
  });
});
