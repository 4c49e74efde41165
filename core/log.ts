/** Where Sluice writes its log lines. Never give it a secret. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** The console methods the log lines go through. */
type Sink = Pick<Console, "info" | "warn" | "error">;

/**
 * Log lines: time, level, message, on stderr. With OpenTelemetry on, Deno exports console lines as
 * logs with the severity of the console method that wrote them, and stderr has no INFO: info lines
 * then go through `console.info` (stdout), so that they are exported as INFO rather than ERROR.
 */
export function consoleLoggerFor(otel: boolean, sink: Sink = console): Logger {
  const info = otel ? sink.info : sink.error;
  return {
    info: (m) => info.call(sink, `${new Date().toISOString()} info  ${logSafe(m)}`),
    warn: (m) => sink.warn(`${new Date().toISOString()} warn  ${logSafe(m)}`),
    error: (m) => sink.error(`${new Date().toISOString()} error ${logSafe(m)}`),
  };
}

// deno-lint-ignore no-control-regex
const CONTROL = /\r?\n|[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/g;

/**
 * A message as it goes in the log. Messages quote what clients sent (a payload, a script's error): a line break there
 * goes on an indented line, so that it cannot pass for a line of its own, and other control characters (a NUL, a
 * carriage return, a terminal's escape, U+2028 and U+2029, which some viewers break lines at) are written as `\u{…}`.
 */
export function logSafe(message: string): string {
  return message.replace(
    CONTROL,
    (c) => c.endsWith("\n") ? "\n    " : `\\u{${c.charCodeAt(0).toString(16)}}`,
  );
}

/** Whether Deno's OpenTelemetry is on (`OTEL_DENO=true`, in any case, as Deno reads it). */
export function otelOn(value = otelSetting()): boolean {
  return value?.trim().toLowerCase() === "true";
}

function otelSetting(): string | undefined {
  try {
    return Deno.env.get("OTEL_DENO");
  } catch {
    return undefined; // no --allow-env: then no OpenTelemetry setting was read either
  }
}

export const consoleLogger: Logger = consoleLoggerFor(otelOn());

/** A logger that keeps nothing (tests). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
