import assert from "node:assert/strict";
import { systemClock } from "../../core/clock.ts";
import { UnavailableError } from "../../core/errors.ts";
import type { Ingest } from "../../engine/ingest.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";
import type { RefusedLog } from "../../store/refused_log.ts";
import { recordingLogger } from "../../tests/helpers/sluice.ts";
import { PublishHandler } from "./publish_handler.ts";
import type { Session } from "./session.ts";

/** A handler whose ingest fails every message with `error`. */
function failingWith(error: Error) {
  const log = recordingLogger();
  const handler = new PublishHandler({
    ingest: { accept: () => Promise.reject(error), refused: () => {} } as unknown as Ingest,
    devices: {} as DeviceDirectory,
    refused: { record: () => {} } as unknown as RefusedLog,
    clock: systemClock,
    maxBodyBytes: 49152,
    log,
  });
  return { handler, log };
}

const session: Session = { principal: { kind: "device", id: "d1" }, revoked: false };
const publish = (handler: PublishHandler) =>
  handler.handle(session, "blog_queuing/invoke", new TextEncoder().encode("{}"));

Deno.test("an unexpected failure of a publish is logged (at most ten a minute) and the publish is not acknowledged", async () => {
  const { handler, log } = failingWith(new TypeError("Cannot read properties of undefined (reading 'seq')"));
  for (let i = 0; i < 15; i++) assert.equal((await publish(handler)).kind, "retry");
  assert.equal(log.lines.length, 10, log.lines.join("\n"));
  handler.close(); // on stop: how many more
  assert.equal(log.lines.length, 11);
  assert.match(log.lines[10]!, /^error 5 more MQTT publish\(es\) failed unexpectedly within the minute/);
  assert.match(
    log.lines[0]!,
    /^error MQTT publish on blog_queuing failed unexpectedly \(not acknowledged, the client sends it again\): Cannot read properties/,
  );
});

Deno.test("KV being unavailable is no defect: the publish is not acknowledged, nothing is logged here", async () => {
  const { handler, log } = failingWith(new UnavailableError("KV refuses writes"));
  assert.equal((await publish(handler)).kind, "retry");
  assert.deepEqual(log.lines, []);
});
