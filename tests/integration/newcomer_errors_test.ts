import assert from "node:assert/strict";
import { WsClient } from "../helpers/clients.ts";
import { integration, post, startTestSluice } from "../helpers/sluice.ts";

/** The error message of an answer that must be a 4xx with `code`. */
async function refusal(res: Response, status: number, code: string): Promise<string> {
  const body = await res.json();
  assert.equal(res.status, status, JSON.stringify(body));
  assert.equal(body.error.code, code);
  return body.error.message;
}

integration("a POST that no route or public script takes says which of the two it missed", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("newcomer");
    // A script that exists but is not public: say how to run it instead of "no public script".
    const queued = await refusal(await post(`${s.url}/test/flaky`, token, {}), 404, "not_found");
    assert.match(queued, /Script "test\/flaky" is not public: queue it with POST \/channels\/<channel>\/invoke/);
    // A mistyped route of Sluice's own (its first segment can never be a script path).
    for (const path of ["/channels/blog_queuing/publish", "/admin/channels/blog_queuing/messages", "/tasks"]) {
      assert.equal(await refusal(await post(`${s.url}${path}`, token, {}), 404, "not_found"), `No route POST ${path}`);
    }
    // Anything else is still an unknown script path, names every object has included.
    for (const path of ["/no/such/script", "/constructor", "/toString"]) {
      assert.equal(
        await refusal(await post(`${s.url}${path}`, token, {}), 404, "not_found"),
        `No public script at ${path} (a script runs once it is in scripts/manifest.ts, public: true, and Sluice ` +
          "restarted)",
      );
    }
    // A device made again, its token lost: how to get a new one.
    const again = await s.admin("/admin/devices", { method: "POST", body: JSON.stringify({ id: "newcomer" }) });
    assert.match(
      await refusal(again, 409, "conflict"),
      /^Device "newcomer" already exists \(its token was shown only when it was created: for a new one, DELETE \/admin\/devices\/newcomer and create it again\)$/,
    );
  } finally {
    await s.close();
  }
});

integration("a body that is not JSON gets a hint that fits it, quoted whole or marked as cut", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("newcomer");
    const invoke = `${s.url}/channels/blog_queuing/invoke`;
    const csv = "22.5,1.3,45.50:-73.56,2026-11-25T10:04:00Z";
    assert.match(
      await refusal(await post(invoke, token, csv), 400, "malformed_json"),
      /\(a bare CSV reading goes as a JSON string: "22\.5,1\.3,45\.50:-73\.56,2026-11-25T10:04:00Z"\)$/,
    );
    const long = `${"1,".repeat(60)}1`;
    assert.match(
      await refusal(await post(invoke, token, long), 400, "malformed_json"),
      new RegExp(`goes as a JSON string: "${"1,".repeat(40)}…"\\)$`),
    );
    // curl -d with form fields: not a CSV reading.
    const form = await refusal(
      await post(`${s.url}/test/echo`, token, "temperature=21.5&pressure=1.2", {
        "content-type": "application/x-www-form-urlencoded",
      }),
      400,
      "malformed_json",
    );
    assert.match(
      form,
      /\(form fields are not read: send a JSON object, \{"temperature":"21\.5","pressure":"1\.2"\}\)$/,
    );
    assert.doesNotMatch(form, /CSV/);
    // A topic message that is plain text.
    assert.match(
      await refusal(await post(`${s.url}/channels/blog_queuing/messages`, token, "hello"), 400, "malformed_json"),
      /\(text goes as a JSON string: "hello"\)$/,
    );
  } finally {
    await s.close();
  }
});

integration("WebSocket frames with a mistyped method or a missing field say what to send", async () => {
  const s = await startTestSluice();
  const ws = await WsClient.connect(`${s.url}/ws?token=${await s.device("newcomer")}`);
  try {
    const failure = async (method: string, params: unknown) => {
      const reply = await ws.request(method, params);
      assert.equal(reply.status, "failure", JSON.stringify(reply));
      return (reply.error as { message: string }).message;
    };
    // A frame method in the wrong case was taken for a script queued on params.channel: "Unknown script".
    assert.equal(
      await failure("subscribe", { channel: "blog_queuing" }),
      'Unknown method "subscribe": frame methods are case-sensitive, send "Subscribe"',
    );
    assert.equal(
      await failure("publish", { channel: "blog_queuing", message: 1 }),
      'Unknown method "publish": frame methods are case-sensitive, send "Publish"',
    );
    // A script that is not public, without params.channel.
    assert.equal(
      await failure("test/flaky", { n: 1 }),
      'Script "test/flaky" is not public: give params.channel to queue it there',
    );
    assert.equal(
      await failure("constructor", {}),
      'Unknown method "constructor": not a frame method nor a public script',
    );
    // A params.channel that is given but is no channel name is said to be so, not taken as absent.
    assert.match(await failure("test/flaky", { channel: null }), /^Invalid params\.channel/);
    assert.equal(await failure("Publish", { channel: "blog_queuing" }), "Invalid params.message: missing");
    assert.equal(await failure("Subscribe", {}), "Invalid params.channel: missing (expected string)");
    // The right frames still work.
    assert.equal((await ws.request("Subscribe", { channel: "blog_queuing" })).status, "success");
  } finally {
    await ws.close();
    await s.close();
  }
});
