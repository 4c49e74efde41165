import { SpanStatusCode, trace } from "@opentelemetry/api";

/**
 * Spans for Deno's built-in OpenTelemetry (`OTEL_DENO=true`): without it they are no-ops.
 * Per batch, not per message, so the hot path pays nothing when tracing is off.
 */
const tracer = trace.getTracer("sluice");

/**
 * Runs `fn` inside a span named `name`, a trace of its own (a group commit or a lane batch serves
 * many requests, so it belongs to none of them); errors, or `fail` called by `fn`, mark it failed.
 */
export async function traced<T>(
  name: string,
  attributes: Record<string, string | number>,
  fn: (fail: (message: string) => void) => Promise<T>,
): Promise<T> {
  return await tracer.startActiveSpan(name, { attributes, root: true }, async (span) => {
    const fail = (message: string) => span.setStatus({ code: SpanStatusCode.ERROR, message });
    try {
      return await fn(fail);
    } catch (err) {
      fail(err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      span.end();
    }
  });
}
