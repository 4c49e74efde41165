import assert from "node:assert/strict";
import { integration, post, startTestSluice, waitFor } from "../helpers/sluice.ts";
import { brokerUrl, connectDevice } from "../helpers/mqtt.ts";
import { ChannelStatsView, RefusedList } from "../../protocols/http/schemas.ts";

// deno-lint-ignore no-explicit-any
type Doc = any;
const METRICS = "metrics-token-0123456789abcdef";

integration("the OpenAPI document declares the tokens, headers, bodies and errors the routes really take", async () => {
  const s = await startTestSluice({ METRICS_TOKEN: METRICS, MQTT_PORT: "0" });
  try {
    const doc: Doc = await (await fetch(`${s.url}/openapi.json`)).json();
    const op = (path: string, method = "get") => doc.paths[path][method];
    const param = (path: string, method: string, where: string, name: string) =>
      op(path, method).parameters?.find((p: { in: string; name: string }) =>
        p.in === where && p.name.toLowerCase() === name
      );
    const errorRef = { $ref: "#/components/schemas/Error" };
    const errorBody = (path: string, method: string, status: number) =>
      op(path, method).responses[status]?.content?.["application/json"]?.schema;
    const device = await s.device("oa-1");

    // 1. "open" routes read a token when one is given: it is optional, not absent.
    const optional = [{}, { bearer: [] }];
    assert.deepEqual(op("/channels/{ch}/messages", "post").security, optional);
    assert.deepEqual(op("/channels/{ch}/events").security, optional);
    const anonymous = await post(`${s.url}/channels/blog_queuing/messages`, null, { a: 1 });
    assert.equal(anonymous.status, 401, "anonymous publishers are refused where the channel does not allow them");
    await anonymous.body?.cancel();
    assert.equal((await post(`${s.url}/channels/blog_queuing/messages`, device, { a: 1 })).status, 202);

    // 2. /ws takes an anonymous upgrade (the token may come later), and ?token=; its errors are Error JSON.
    const ws = new WebSocket(`${s.url.replace("http://", "ws://")}/ws`);
    await new Promise((resolve, reject) => (ws.onopen = resolve, ws.onerror = reject));
    ws.close();
    assert.deepEqual(op("/ws").security, optional);
    assert.ok(param("/ws", "get", "query", "token"), "/ws ?token= declared");
    for (const status of [400, 401, 426, 429, 503]) assert.deepEqual(errorBody("/ws", "get", status), errorRef);
    assert.ok(op("/ws").responses[429].headers["Retry-After"]);
    assert.deepEqual(errorBody("/mqtt", "get", 400), errorRef);

    // 3. /metrics with METRICS_TOKEN set needs it.
    const metrics = await fetch(`${s.url}/metrics`);
    assert.equal(metrics.status, 401);
    await metrics.body?.cancel();
    assert.deepEqual(op("/metrics").security, [{ bearer: [] }]);
    assert.deepEqual(errorBody("/metrics", "get", 401), errorRef);

    // 4. Every defineRoute route may answer 500 and 503; 429 and 503 say when to come back.
    for (const [path, method] of [["/pumps", "get"], ["/channels/{ch}/invoke", "post"], ["/admin/devices", "post"]]) {
      assert.deepEqual(errorBody(path!, method!, 500), errorRef, `${method} ${path} 500`);
      assert.deepEqual(errorBody(path!, method!, 503), errorRef, `${method} ${path} 503`);
      assert.ok(op(path!, method!).responses[503].headers["Retry-After"], `${method} ${path} 503 Retry-After`);
      assert.ok(op(path!, method!).responses[429].headers["Retry-After"], `${method} ${path} 429 Retry-After`);
    }
    assert.match(doc.info.description, /405 \(`method_not_allowed`\)/);

    // 5. A task's failed attempts.
    const task = doc.components.schemas.Task.properties.errors;
    assert.deepEqual(Object.keys(task.items.properties).sort(), ["at", "attempt", "error"]);

    // 6. A body schema with a default is an optional body: the bulk retry takes an empty one.
    assert.equal(op("/admin/dead-letters/retry", "post").requestBody.required, false);
    const retried = await s.admin("/admin/dead-letters/retry", { method: "POST" });
    assert.equal(retried.status, 202);
    await retried.body?.cancel();
    assert.equal(op("/admin/devices", "post").requestBody.required, true);

    // 7. A public script reads Idempotency-Key; an empty body is the script's to take (test/echo) or refuse.
    const empty = await post(`${s.url}/test/echo`, device, "");
    assert.equal(empty.status, 200);
    await empty.body?.cancel();
    assert.ok(param("/blog/queues/feed", "post", "header", "idempotency-key"), "script Idempotency-Key declared");
    // The sample app's feed says what it takes, and its example is a reading it takes.
    const feedBody = op("/blog/queues/feed", "post").requestBody.content["application/json"].schema;
    assert.match(feedBody.description, /temperature,pressure,lat:lon\[,time\]/);
    const tried = await post(`${s.url}/blog/queues/feed`, device, feedBody.example);
    assert.equal(tried.status, 200, await tried.clone().text());
    await tried.body?.cancel();
    const bad = await post(`${s.url}/test/echo`, device, {}, { "idempotency-key": "k".repeat(201) });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    // 8. Last-Event-ID is declared; Idempotency-Key with the length enforced.
    assert.ok(param("/channels/{ch}/events", "get", "header", "last-event-id"), "Last-Event-ID declared");
    const key = param("/channels/{ch}/invoke", "post", "header", "idempotency-key").schema;
    assert.deepEqual([key.minLength, key.maxLength], [1, 200]);

    // 9. Topic messages have their own schema, not the invoke body's.
    assert.equal(
      op("/channels/{ch}/messages", "post").requestBody.content["application/json"].schema.$ref,
      "#/components/schemas/TopicMessage",
    );

    // 10. The admin routes' answers are described, with the fields they really have.
    const okSchema = (path: string, method = "get") =>
      op(path, method).responses[200].content["application/json"].schema;
    assert.equal(okSchema("/admin/dead-letters").$ref, "#/components/schemas/DeadLetterList");
    assert.equal(okSchema("/admin/devices").$ref, "#/components/schemas/DeviceList");
    assert.equal(okSchema("/admin/channels").$ref, "#/components/schemas/ChannelList");
    const channels = await (await s.admin("/admin/channels")).json();
    const declared = Object.keys(doc.components.schemas.Channel.properties);
    for (const c of channels.channels) for (const k of Object.keys(c)) assert.ok(declared.includes(k), `Channel.${k}`);
    const devices = await (await s.admin("/admin/devices")).json();
    assert.equal(doc.components.schemas.DeviceList.properties.devices.items.$ref, "#/components/schemas/Device");
    const item = doc.components.schemas.Device.properties;
    for (const d of devices.devices) assert.deepEqual(Object.keys(d).sort(), Object.keys(item).sort());
    const fieldsOf = (name: string) => Object.keys(doc.components.schemas[name].properties);
    assert.equal(okSchema("/admin/channels/{ch}/stats").$ref, "#/components/schemas/ChannelStats");
    await s.admin("/admin/channels", {
      method: "POST",
      body: JSON.stringify({ name: "oa_topic", subscribers: ["test/echo"] }),
    });
    await (await post(`${s.url}/channels/oa_topic/messages`, device, { n: 1 })).body?.cancel();
    const stats = await (await s.admin("/admin/channels/oa_topic/stats")).json();
    ChannelStatsView.strict().parse(stats); // the real answer, field by field, and nothing more
    for (const sub of stats.subscribers) ChannelStatsView.shape.subscribers.element.strict().parse(sub);
    assert.ok(fieldsOf("ChannelStats").includes("subscribers"));
    assert.equal(okSchema("/admin/refused").$ref, "#/components/schemas/RefusedList");
    const client = await connectDevice(brokerUrl(s), "oa-1", device);
    await client.publishAsync("blog_queuing/invoke", "{not json", { qos: 1 });
    await client.endAsync();
    const refused = await waitFor(async () => {
      const page = await (await s.admin("/admin/refused")).json();
      return page.refused.length > 0 ? page : null;
    });
    RefusedList.strict().parse(refused);
    for (const r of refused.refused) RefusedList.shape.refused.element.strict().parse(r);
  } finally {
    await s.close();
  }
});

integration("an SSE stream's from is declared with the pattern the server takes: a seq of 1 or more", async () => {
  const s = await startTestSluice();
  try {
    const doc: Doc = await (await fetch(`${s.url}/openapi.json`)).json();
    const from = doc.paths["/channels/{ch}/events"].get.parameters.find((p: { name: string }) => p.name === "from");
    const pattern = new RegExp(from.schema.pattern);
    const token = await s.device("oa-2");
    for (let n = 0; n < 7; n++) {
      await (await post(`${s.url}/channels/blog_queuing/messages`, token, { n })).body?.cancel();
    }
    for (const value of ["0", "1", "007", "000", "1234567890123456"]) {
      const res = await fetch(`${s.url}/channels/blog_queuing/events?from=${value}&token=${token}`);
      await res.body?.cancel();
      assert.equal(pattern.test(value), res.status === 200, `from=${value}: ${res.status}, pattern ${pattern}`);
    }
  } finally {
    await s.close();
  }
});
