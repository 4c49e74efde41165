/** Where Sluice writes its log lines. Never give it a secret. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Log lines on stderr: time, level, message. */
export const consoleLogger: Logger = {
  info: (m) => console.error(`${new Date().toISOString()} info  ${m}`),
  warn: (m) => console.error(`${new Date().toISOString()} warn  ${m}`),
  error: (m) => console.error(`${new Date().toISOString()} error ${m}`),
};

/** A logger that keeps nothing (tests). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
