/** Where Sluice writes its log lines. Never give it a secret. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * Log lines on stderr: time, level, message. (With OpenTelemetry on, Deno exports console lines as
 * logs: `console.warn`'s with WARN severity; stderr has no INFO, so info lines go as ERROR.)
 */
export const consoleLogger: Logger = {
  info: (m) => console.error(`${new Date().toISOString()} info  ${m}`),
  warn: (m) => console.warn(`${new Date().toISOString()} warn  ${m}`),
  error: (m) => console.error(`${new Date().toISOString()} error ${m}`),
};

/** A logger that keeps nothing (tests). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
