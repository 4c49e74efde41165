/**
 * AMQP simulator: a fleet of pumps publishing the sample application's readings to RabbitMQ
 * (`<token>/blog_queuing/invoke`, one `messageId` each) with publisher confirms.
 *
 *   deno task sim:amqp --devices 10 --rate 200 --duration 10 --admin-token sla_…
 *
 * With `--admin-token` it creates its devices through Sluice's admin API (`--admin-url`) and, at
 * the end, waits for their readings to be processed; otherwise give `--tokens FILE` (one device
 * token a line, or `id token`).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { parseArgs } from "node:util";
import { connect } from "amqplib";
import { Fleet, invokePayload, type SimulatedPump } from "./fleet.ts";

const USAGE = `deno task sim:amqp [options]
  --devices N        pumps to simulate (10)
  --rate R           messages a second, all pumps together (100)
  --duration S       seconds to publish for (10)
  --url URL          RabbitMQ (AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
  --admin-url URL    Sluice, to create devices and count readings (http://localhost:8000)
  --admin-token T    Sluice's admin token (ADMIN_TOKEN); creates the devices
  --tokens FILE      device tokens instead, one a line ("token" or "id token")
  --prefix P         device ids are P-0, P-1 … (amqp-sim-<time>)
  --channel C        channel (blog_queuing)
  --seed N           fleet seed (42)
  --no-wait          do not wait for the readings to be processed`;

interface Device {
  /** Index of the pump in the fleet. */
  readonly index: number;
  readonly pump: SimulatedPump;
  sent: number;
  readonly token: string;
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    args: Deno.args,
    options: {
      devices: { type: "string", default: "10" },
      rate: { type: "string", default: "100" },
      duration: { type: "string", default: "10" },
      url: { type: "string", default: Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672" },
      "admin-url": { type: "string", default: "http://localhost:8000" },
      "admin-token": { type: "string", default: Deno.env.get("ADMIN_TOKEN") },
      tokens: { type: "string" },
      prefix: { type: "string", default: `amqp-sim-${Date.now().toString(36)}` },
      channel: { type: "string", default: "blog_queuing" },
      seed: { type: "string", default: "42" },
      "no-wait": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (a.help) return console.log(USAGE);
  const count = positive(a.devices, "--devices"), rate = positive(a.rate, "--rate");
  const duration = positive(a.duration, "--duration");
  const fleet = new Fleet({ size: count, prefix: a.prefix, seed: Number(a.seed) });
  const admin = a["admin-token"] ? { url: a["admin-url"].replace(/\/$/, ""), token: a["admin-token"] } : null;
  const devices = a.tokens
    ? await fromFile(a.tokens, fleet)
    : admin
    ? await create(admin, fleet)
    : fail("Give --admin-token (to create devices) or --tokens FILE\n\n" + USAGE);

  const model = await connect(a.url, { clientProperties: { connection_name: "sluice sim:amqp" } });
  model.on("error", (err: Error) => console.error(`connection error: ${err.message}`));
  const ch = await model.createConfirmChannel();
  ch.on("error", (err: Error) => console.error(`channel error: ${err.message}`));

  let sent = 0, confirmed = 0, failed = 0, inFlight = 0, next = 0;
  const started = performance.now();
  const publish = (d: Device) => {
    const body = Buffer.from(invokePayload(fleet.next(d.index, Date.now())));
    const id = `${d.pump.id}-${d.sent++}`;
    sent++, inFlight++;
    ch.publish("iot", `${d.token}/${a.channel}/invoke`, body, {
      persistent: true,
      messageId: id,
      contentType: "application/json",
    }, (err) => {
      inFlight--;
      if (err) failed++;
      else confirmed++;
    });
  };
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    line(`${s.toFixed(0)} s: sent ${sent}, confirmed ${confirmed}, failed ${failed} (${(confirmed / s).toFixed(0)}/s)`);
  }, 1000);
  // Publish on a 10 ms tick as many as the rate allows so far; never more than 5,000 unconfirmed.
  while (performance.now() - started < duration * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate) - sent;
    for (let i = 0; i < due && inFlight < 5000; i++) publish(devices[next++ % devices.length]!);
    await new Promise((r) => setTimeout(r, 10));
  }
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
  clearInterval(progress);
  const secs = (performance.now() - started) / 1000;
  line("");
  console.log(
    `published ${sent} from ${devices.length} device(s) in ${secs.toFixed(1)} s: ` +
      `${confirmed} confirmed, ${failed} not confirmed (${(confirmed / secs).toFixed(0)}/s)`,
  );
  await ch.close();
  await model.close();
  if (admin && !a["no-wait"]) await processed(admin, devices, confirmed);
}

async function processed(admin: { url: string; token: string }, devices: Device[], expected: number) {
  const started = performance.now();
  let readings = 0;
  while (performance.now() - started < 60_000) {
    const counts = await Promise.all(devices.map(async ({ pump }) => {
      const res = await fetch(`${admin.url}/pumps/${pump.id}`, { headers: { authorization: `Bearer ${admin.token}` } });
      const body = await res.json();
      return res.ok ? body.readings as number : 0;
    }));
    readings = counts.reduce((x, y) => x + y, 0);
    line(`waiting for processing: ${readings}/${expected} readings`);
    if (readings >= expected) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  line("");
  console.log(`processed: ${readings} of ${expected} readings recorded on the pumps`);
}

async function create(admin: { url: string; token: string }, fleet: Fleet): Promise<Device[]> {
  return await Promise.all(fleet.pumps.map(async (pump) => {
    const res = await fetch(`${admin.url}/admin/devices`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
      body: JSON.stringify({ id: pump.id }),
    });
    if (res.status === 409) fail(`Device ${pump.id} exists already: choose another --prefix`);
    if (res.status !== 201) fail(`Creating device ${pump.id}: ${res.status} ${await res.text()}`);
    return { index: fleet.pumps.indexOf(pump), pump, sent: 0, token: (await res.json()).token as string };
  }));
}

async function fromFile(path: string, fleet: Fleet): Promise<Device[]> {
  const tokens = (await Deno.readTextFile(path)).split("\n").map((l) => l.trim()).filter(Boolean);
  if (tokens.length === 0) fail(`No tokens in ${path}`);
  return fleet.pumps.map((pump, i) => {
    const parts = tokens[i % tokens.length]!.split(/\s+/);
    const id = parts.length > 1 ? parts[0]! : pump.id;
    return { index: i, pump: { ...pump, id }, sent: 0, token: parts.at(-1)! };
  });
}

function positive(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) fail(`${name} must be a positive number, got "${v}"`);
  return n;
}

function line(text: string): void {
  if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${text}`));
  else if (text) console.error(text);
}

function fail(message: string): never {
  console.error(message);
  Deno.exit(2);
}

if (import.meta.main) await main();
