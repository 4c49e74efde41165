import { type Span, SpanStatusCode, trace } from "@opentelemetry/api";

/**
 * Spans for Deno's built-in OpenTelemetry (`OTEL_DENO=true`): without it they are no-ops.
 * Per batch, not per message, so the hot path pays nothing when tracing is off.
 */
const tracer = trace.getTracer("sluice");

/** Runs `fn` inside a span named `name`; errors mark the span failed. */
export async function traced<T>(
  name: string,
  attributes: Record<string, string | number>,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  return await tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
