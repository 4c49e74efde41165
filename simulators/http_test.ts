import assert from "node:assert/strict";
import { httpTransport } from "./http.ts";

Deno.test("sim:http refuses a --url that is Sluice's base URL, before any device is touched, and says what to give", async () => {
  for (const url of ["http://127.0.0.1:1", "http://127.0.0.1:1/"]) {
    await assert.rejects(
      () => httpTransport(url).check!(),
      {
        message: "--url http://127.0.0.1:1 names no script or channel: give the URL readings are POSTed to, " +
          "http://127.0.0.1:1/blog/queues/feed or http://127.0.0.1:1/channels/blog_queuing/invoke",
      },
    );
  }
  // A URL with a path is checked for a listener as before.
  await assert.rejects(() => httpTransport("http://127.0.0.1:1/blog/queues/feed").check!(), /Cannot reach/);
});
