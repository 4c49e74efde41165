import { Buffer } from "node:buffer";
import { type ChannelModel, type ConfirmChannel, connect, type GetMessage, type Options } from "amqplib";
import { type AmqpAdapter, DEAD_LETTER_QUEUE, INGEST_EXCHANGE, INGEST_QUEUE } from "../../protocols/amqp/mod.ts";
import { type TestSluice, waitFor } from "./sluice.ts";

/** The RabbitMQ the AMQP tests run against (this machine's, guest/guest). */
export const AMQP_URL = Deno.env.get("SLUICE_TEST_AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";

/** Starts RabbitMQ when nothing listens on its port (as `.ci/run` does), so the tests run rather than skip. */
export async function ensureRabbitMq(): Promise<void> {
  const { hostname, port } = new URL(AMQP_URL);
  const open = async () => {
    try {
      (await Deno.connect({ hostname, port: Number(port || 5672) })).close();
      return true;
    } catch {
      return false;
    }
  };
  if (await open()) return;
  await new Deno.Command("rabbitmq-server", { args: ["-detached"] }).output().catch(() => {});
  await waitFor(open, 60_000, "RabbitMQ to listen");
}

/** A test's own AMQP client: a confirm channel to publish and read queues with. */
export interface AmqpClient {
  readonly model: ChannelModel;
  readonly ch: ConfirmChannel;
  /** Publishes to `iot` and waits for the broker's confirm. */
  publish(routingKey: string, body: string | object, options?: Options.Publish): Promise<void>;
  /** Takes every message now in a queue (acked). */
  drain(queue: string): Promise<GetMessage[]>;
  count(queue: string): Promise<number>;
  close(): Promise<void>;
}

/** Connects a test client and deletes `iot.ingest` and `iot.dead`, which every AMQP test shares. */
export async function amqpClient(): Promise<AmqpClient> {
  await ensureRabbitMq();
  const model = await connect(AMQP_URL, { clientProperties: { connection_name: "sluice test client" } });
  model.on("error", () => {});
  const ch = await model.createConfirmChannel();
  ch.on("error", () => {});
  await ch.deleteQueue(INGEST_QUEUE);
  await ch.deleteQueue(DEAD_LETTER_QUEUE);
  const client: AmqpClient = {
    model,
    ch,
    publish: (routingKey, body, options = {}) =>
      new Promise((resolve, reject) => {
        const content = Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
        ch.publish(INGEST_EXCHANGE, routingKey, content, { persistent: true, ...options }, (err) => {
          if (err) reject(new Error(`publish not confirmed: ${err}`));
          else resolve();
        });
      }),
    async drain(queue) {
      const out: GetMessage[] = [];
      for (;;) {
        const m = await ch.get(queue, { noAck: true });
        if (!m) return out;
        out.push(m);
      }
    },
    async count(queue) {
      return (await ch.checkQueue(queue)).messageCount;
    },
    async close() {
      await ch.close().catch(() => {});
      await model.close().catch(() => {});
    },
  };
  return client;
}

/** The running Sluice's AMQP adapter. */
export function amqpAdapterOf(s: TestSluice): AmqpAdapter {
  const a = s.server.adapters.find((a) => a.name === "amqp");
  if (!a) throw new Error("The test Sluice has no AMQP adapter (AMQP_URL not passed?)");
  return a as AmqpAdapter;
}

/** Waits until `/healthz` says AMQP is ok: topology declared, consuming, re-publishing. */
export async function amqpReady(s: { readonly url: string }, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => {
      const res = await fetch(`${s.url}/healthz`);
      return (await res.json()).checks.amqp === "ok";
    },
    timeoutMs,
    "AMQP adapter ready",
  );
}

async function rabbitmqctl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("rabbitmqctl", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`rabbitmqctl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

/** One field of the adapter's connection as `rabbitmqctl list_connections` shows it. */
async function connectionField(adapter: AmqpAdapter, field: string): Promise<string> {
  const listing = await rabbitmqctl("list_connections", field, "client_properties", "-q", "--no-table-headers");
  const line = listing.split("\n").find((l) => l.includes(`{"connection_name","${adapter.connectionName}"}`));
  if (!line) throw new Error(`No RabbitMQ connection named "${adapter.connectionName}"`);
  return line.split("\t")[0]!;
}

/** Closes the adapter's connection from the broker's side, as `rabbitmqctl close_connection` does. */
export async function forceCloseConnection(adapter: AmqpAdapter): Promise<void> {
  await rabbitmqctl("close_connection", await connectionField(adapter, "pid"), "closed by a Sluice test");
}

/** The heartbeat (s) RabbitMQ and the adapter agreed on for its connection. */
export async function heartbeatOf(adapter: AmqpAdapter): Promise<number> {
  return Number(await connectionField(adapter, "timeout"));
}

/** A pump reading in the gateways' CSV form, with `n` as the temperature so order can be checked. */
export function csvInvoke(n: number): { method: string; params: { data: string } } {
  return { method: "blog/queues/processor", params: { data: `${n},1.5,45.5017:-73.5673,2026-11-25T10:00:00Z` } };
}

/** The temperatures of a pump's readings, in log order. */
export async function temperatures(s: TestSluice, pump: string): Promise<number[]> {
  const page = await (await s.admin(`/pumps/${pump}/events?limit=1000`)).json();
  return page.events.map((e: { data: { reading: { temperature: number } } }) => e.data.reading.temperature);
}

/** Waits until a pump has `n` readings (and no more appear to be coming is the caller's business). */
export async function readings(s: TestSluice, pump: string, n: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const res = await s.admin(`/pumps/${pump}`);
      const body = await res.json();
      return res.status === 200 && body.readings >= n;
    },
    timeoutMs,
    `${n} readings on ${pump}`,
  );
}
