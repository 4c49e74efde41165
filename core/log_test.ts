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

Deno.test("text quoted from clients cannot forge a log line: a line break is indented, other control characters escaped", () => {
  const { lines, sink } = recording();
  const log = consoleLoggerFor(false, sink);
  log.warn("Reading refused: A\n2026-11-27T23:59:59.000Z error  FORGED\r\nB\u0000\u001b[31mred\u009b2J\u2028C");
  assert.equal(lines.length, 1);
  const [line] = lines[0]!.slice(1) as [string];
  const [first, ...rest] = line.split("\n");
  assert.match(first!, / warn {2}Reading refused: A$/);
  assert.deepEqual(rest, [
    "    2026-11-27T23:59:59.000Z error  FORGED",
    "    B\\u{0}\\u{1b}[31mred\\u{9b}2J\\u{2028}C",
  ]);
  assert.ok(rest.every((l) => !/^\d{4}-/.test(l)), "no continuation line starts like a log line");
});
