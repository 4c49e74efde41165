import assert from "node:assert/strict";
import { consoleLoggerFor, otelOn } from "./log.ts";

function recording() {
  const lines: [string, string][] = [];
  const sink = {
    info: (m: string) => lines.push(["info", m]),
    warn: (m: string) => lines.push(["warn", m]),
    error: (m: string) => lines.push(["error", m]),
  };
  return { lines, sink };
}

Deno.test("log lines go to stderr; with OpenTelemetry on, info lines go through console.info to export as INFO", () => {
  for (const [otel, infoMethod] of [[false, "error"], [true, "info"]] as const) {
    const { lines, sink } = recording();
    const log = consoleLoggerFor(otel, sink);
    log.info("listening");
    log.warn("slow");
    log.error("broken");
    assert.deepEqual(lines.map(([method]) => method), [infoMethod, "warn", "error"]);
    assert.match(lines[0]![1], /^\d{4}-\d\d-\d\dT[\d:.]+Z info {2}listening$/);
    assert.match(lines[2]![1], / error broken$/);
  }
});

Deno.test("OTEL_DENO is read as Deno reads it: true in any case turns the log's OpenTelemetry form on", () => {
  for (const on of ["true", "TRUE", "True", " true "]) assert.equal(otelOn(on), true, on);
  for (const off of [undefined, "", "false"]) assert.equal(otelOn(off), false, String(off));
});
