import type { Script } from "@sluice/script";
import { PermanentError } from "@sluice/script";
import { parseReading } from "./reading.ts";

/**
 * The HTTP gateways' endpoint (`POST /blog/queues/feed`): checks the reading, queues
 * `blog/queues/processor` on `blog_queuing` and answers at once with the queue's response.
 */
const feed: Script = (request, ctx) => {
  if (request.body === null || request.body === undefined || request.body === "") {
    throw new PermanentError("Empty request body: send a reading");
  }
  parseReading(request.body, request.receivedAt); // refuse garbage now, not as a dead task later
  return ctx.queue("blog_queuing").queue("blog/queues/processor", request.body);
};

export default feed;
