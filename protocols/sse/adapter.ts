import { z } from "@hono/zod-openapi";
import type { Principal } from "../../core/envelope.ts";
import { describeError, SluiceError, StreamCutOff, UnavailableError, ValidationError } from "../../core/errors.ts";
import { authorizeSubscribe } from "../../engine/access.ts";
import type { Subscription, TopicMessage } from "../../engine/topic_hub.ts";
import type { Sluice } from "../../sluice.ts";
import type { Adapter } from "../adapter.ts";
import { defineRoute, ErrorSchema } from "../http/route.ts";
import { ChannelParams } from "../http/schemas.ts";

export interface SseOptions {
  /** Comment sent when idle, so proxies keep the stream open. */
  readonly heartbeatMs?: number;
  /** A subscriber whose unread data passes this is cut off. */
  readonly maxBufferBytes?: number;
  /** Most streams open at once, from every client together. */
  readonly maxStreams?: number;
}

/** A seq as written in a URL or header: decimal digits, at most 15 (a safe integer). */
const SEQ_TEXT = /^\d{1,15}$/;

/** A seq to start from: as `SEQ_TEXT`, but 1 or more (the pattern the OpenAPI document gives says so too). */
const FROM_TEXT = /^(?=\d{1,15}$)0*[1-9]\d*$/;

const Query = z.object({
  from: z.string().regex(FROM_TEXT, "must be a message seq (a whole number, 1 or more)").transform(Number).optional(),
  token: z.string().optional(),
});

/** Read and checked by the handler (`resumeFrom`); declared here to be documented. */
const LastEventHeaders = z.object({
  "last-event-id": z.string().optional().openapi({
    description:
      "The seq of the last message seen: the stream resumes after it (what a reconnecting EventSource sends)",
    pattern: SEQ_TEXT.source,
  }),
});

const encoder = new TextEncoder();

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
};

/** `GET /channels/:ch/events`: a topic as Server-Sent Events, `id:` = seq, resumable. */
export function sseAdapter(sluice: Sluice, options: SseOptions = {}): Adapter {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBuffer = options.maxBufferBytes ?? 1024 * 1024;
  const maxStreams = options.maxStreams ?? 10_000;
  /** Open streams: how to end each, and whom and which channel it serves. */
  const open = new Map<(why?: string) => void, { readonly principal: Principal; readonly channel: string }>();
  // A revoked device's streams end at once; its EventSource then gets 401 on reconnecting.
  const stopRevocations = sluice.devices.onRevoke((id) => {
    for (const [end, { principal }] of open) {
      if (principal.kind === "device" && principal.id === id) end("Device revoked");
    }
  });
  // So do the streams a channel change no longer allows (a deleted channel, anonymous readers refused).
  const recheck = (end: (why?: string) => void, principal: Principal, channel: string) =>
    authorizeSubscribe(sluice.channels, principal, channel).catch((err) =>
      err instanceof SluiceError ? end(err.message) : sluice.log.warn(`Rechecking SSE subscriptions: ${err}`)
    );
  const stopChanges = sluice.channels.onChange((changed) => {
    for (const [end, { principal, channel }] of [...open]) {
      if (changed === null || channel === changed) recheck(end, principal, channel);
    }
  });
  return {
    name: "sse",
    connections: () => open.size,
    mount(app, deps) {
      defineRoute(app, deps, {
        method: "get",
        path: "/channels/:ch/events",
        summary: "Follow a topic as Server-Sent Events",
        description: "Without `from`, only new messages; `?from=N` starts at N; `Last-Event-ID: N` resumes at N+1 " +
          "(and wins over the URL's `from`, which a reconnecting EventSource repeats); a start past the channel's " +
          "next message is a 400. The token may be given as `?token=` (EventSource cannot set headers).",
        tags: ["channels"],
        access: "open",
        queryToken: true,
        params: ChannelParams,
        query: Query,
        headers: LastEventHeaders,
        responses: {
          200: { description: "text/event-stream of `{channel, seq, message}`" },
          401: {
            description: "Anonymous subscribers not allowed here, or a token that is not valid",
            schema: ErrorSchema,
          },
          403: {
            description: "A channel of Sluice's own (`_pumps`) followed with a device token",
            schema: ErrorSchema,
          },
          404: { description: "Unknown channel", schema: ErrorSchema },
          429: {
            description: "The device holds its limit of open streams (WebSocket, SSE and MQTT)",
            schema: ErrorSchema,
          },
          503: { description: "Too many streams open on this server", schema: ErrorSchema },
        },
      }, async ({ c, principal, params, query }) => {
        await authorizeSubscribe(sluice.channels, principal, params.ch);
        // A reconnecting EventSource repeats the URL (its `from`) and says what it saw: the latter wins.
        const from = resumeFrom(c.req.header("last-event-id")) ?? query.from;
        await sluice.topics.checkStart(params.ch, from);
        // HEAD (which Hono serves with this GET handler, dropping the body unread) opens no stream.
        if (c.req.method === "HEAD") return new Response(null, { headers: SSE_HEADERS });
        // Each open stream holds a subscription and up to `maxBuffer` of unsent data.
        if (open.size >= maxStreams) throw new UnavailableError(`Too many event streams open (${maxStreams})`);
        const release = sluice.deviceStreams.take(principal);
        let sub: Subscription | null = null;
        let heartbeat: ReturnType<typeof setInterval> | undefined;
        let stop = (_why?: string, _cut?: boolean) => {};
        const body = new ReadableStream<Uint8Array>({
          start: async (controller) => {
            // `cut`: the client reads nothing; the stream ends with its unsent data dropped (closed, it would
            // keep it, outside every cap, until the client reads). What the OS holds stays until then.
            stop = (why, cut = false) => {
              release();
              clearInterval(heartbeat);
              sub?.close();
              open.delete(stop);
              try {
                if (cut) return controller.error(new StreamCutOff(`SSE subscriber cut off: ${why}`));
                if (why) controller.enqueue(encoder.encode(`event: error\ndata: ${JSON.stringify(why)}\n\n`));
                controller.close();
              } catch { /* already closed */ }
            };
            open.set(stop, { principal, channel: params.ch });
            controller.enqueue(encoder.encode(`retry: 2000\n: subscribed to ${params.ch}\n\n`));
            const send = (m: TopicMessage) => {
              if ((controller.desiredSize ?? 0) <= 0) {
                const why = `its send buffer is over ${maxBuffer} bytes`;
                sluice.log.warn(`SSE subscriber of ${params.ch} cut off: ${why}`);
                sluice.instruments.cutOff("sse");
                return stop(why, true);
              }
              const data = JSON.stringify({ channel: m.channel, seq: m.seq, message: m.message });
              controller.enqueue(encoder.encode(`id: ${m.seq}\ndata: ${data}\n\n`));
            };
            try {
              // The hub keeps the client at most a quarter of the buffer ahead, the rest waiting in the log.
              const room = () => maxBuffer - (controller.desiredSize ?? 0) < maxBuffer / 4;
              sub = await sluice.topics.subscribe(params.ch, from, { deliver: send, room, ended: (why) => stop(why) });
            } catch (err) {
              // An errored stream is never cancelled: end it here, or its slot stays taken.
              sluice.log.warn(`SSE subscription to ${params.ch} failed: ${describeError(err)}`);
              return stop("Cannot follow the channel now; reconnect later");
            }
            if (!open.has(stop)) return sub.close(); // ended (revoked, closed) while subscribing
            // A change of the channel while the request was checked came before this stream was open: again.
            await recheck(stop, principal, params.ch);
            if (!open.has(stop)) return;
            heartbeat = setInterval(() => {
              try {
                controller.enqueue(encoder.encode(": keep-alive\n\n"));
              } catch {
                stop();
              }
            }, heartbeatMs);
          },
          cancel: () => stop(),
        }, new ByteLengthQueuingStrategy({ highWaterMark: maxBuffer }));
        return new Response(body, { headers: SSE_HEADERS });
      });
    },
    close() {
      stopRevocations();
      stopChanges();
      // Told why, as WebSocket subscribers are (1001): an EventSource reconnects by itself after `retry`.
      for (const stop of [...open.keys()]) stop("Sluice is stopping; reconnect in a moment");
      return Promise.resolve();
    },
  };
}

function resumeFrom(lastEventId: string | undefined): number | undefined {
  if (lastEventId === undefined || lastEventId === "") return undefined;
  if (!SEQ_TEXT.test(lastEventId)) throw new ValidationError("Last-Event-ID must be a message seq");
  return Number(lastEventId) + 1;
}
