import assert from "node:assert/strict";
import { inBothModes, post, startTestSluice, waitFor } from "../helpers/sluice.ts";

const reading = (t: number, time = "2026-11-25T10:00:00Z") => ({
  temperature: String(t),
  pressure: "1.25",
  coordinates: "45.5017:-73.5673",
  time,
});

inBothModes("an HTTP gateway's reading posted to /blog/queues/feed becomes an enriched pump reading", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("pump-1");
    const res = await post(`${s.url}/blog/queues/feed`, token, reading(21.5));
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.metadata.status, "success");
    assert.match(body.result.taskId, /\S+/);
    const pump = await waitFor(async () => {
      const r = await s.admin("/pumps/pump-1");
      return r.status === 200 ? await r.json() : null;
    });
    assert.equal(pump.readings, 1);
    assert.deepEqual(pump.lastReading, {
      temperature: 21.5,
      pressure: 1.25,
      coordinates: { lat: 45.5017, lon: -73.5673 },
      time: "2026-11-25T10:00:00.000Z",
      outsideTemperature: 4.5,
    });
    const call = s.weather.calls[0]!;
    assert.equal(call.searchParams.get("latitude"), "45.5017");
    assert.equal(call.searchParams.get("longitude"), "-73.5673");
    assert.equal(call.searchParams.get("current"), "temperature_2m");
    const task =
      await (await fetch(`${s.url}/tasks/${body.result.taskId}`, { headers: { authorization: `Bearer ${token}` } }))
        .json();
    assert.equal(task.status, "done");
  } finally {
    await s.close();
  }
});

inBothModes(
  "an MQTT-style CSV invoke is processed like the JSON one and the weather is asked once per place",
  async (mode) => {
    const s = await startTestSluice(mode);
    try {
      const token = await s.device("pump-2");
      for (const t of [20, 22]) {
        const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
          method: "blog/queues/processor",
          params: { data: `${t},1.5,48.85:2.35,2026-11-25T10:00:0${t - 20}Z` },
        });
        assert.equal(res.status, 202);
      }
      const pump = await waitFor(async () => {
        const p = await (await s.admin("/pumps/pump-2")).json();
        return p.readings === 2 ? p : null;
      });
      assert.deepEqual(pump.temperature, { min: 20, max: 22, sum: 42, avg: 21 });
      assert.equal(pump.outsideTemperature, 4.5);
      assert.equal(s.weather.calls.length, 1, "the second reading at the same place used the cache");
    } finally {
      await s.close();
    }
  },
);

inBothModes("a reading is kept without outside temperature when the weather API fails or hangs", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("pump-3");
    s.weather.mode = "fail";
    await post(`${s.url}/blog/queues/feed`, token, { ...reading(10), coordinates: "10:10" });
    s.weather.mode = "hang";
    await post(`${s.url}/blog/queues/feed`, token, { ...reading(11), coordinates: "11:11" });
    const pump = await waitFor(async () => {
      const p = await (await s.admin("/pumps/pump-3")).json();
      return p.readings === 2 ? p : null;
    }, 15_000);
    assert.equal(pump.lastReading.outsideTemperature, undefined);
    assert.equal(pump.outsideTemperature, null);
  } finally {
    await s.close();
  }
});

inBothModes("200 readings from 4 devices are all processed, each device's in send order", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const devices = ["dev-a", "dev-b", "dev-c", "dev-d"];
    const tokens = await Promise.all(devices.map((d) => s.device(d)));
    await Promise.all(devices.map(async (_d, i) => {
      for (let n = 0; n < 50; n++) {
        const res = await post(`${s.url}/channels/blog_queuing/invoke`, tokens[i]!, {
          method: "blog/queues/processor",
          params: { data: `${n},1,45:-73,2026-11-25T10:00:00Z` },
        });
        assert.equal(res.status, 202);
      }
    }));
    for (const d of devices) {
      await waitFor(async () => (await (await s.admin(`/pumps/${d}`)).json()).readings === 50, 20_000, `${d} done`);
      const page = await (await s.admin(`/pumps/${d}/events?limit=1000`)).json();
      assert.deepEqual(
        page.events.map((e: { data: { reading: { temperature: number } } }) => e.data.reading.temperature),
        Array.from({ length: 50 }, (_, n) => n),
      );
    }
  } finally {
    await s.close();
  }
});

inBothModes("a garbage reading to feed is refused at once with a clear 400", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("pump-4");
    const res = await post(`${s.url}/blog/queues/feed`, token, { temperature: "hot", pressure: 1, coordinates: "1:1" });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /temperature/);
  } finally {
    await s.close();
  }
});

inBothModes("a gateway's resend of a reading to feed with the same Idempotency-Key queues it once", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("pump-9");
    const send = (key: string) => post(`${s.url}/blog/queues/feed`, token, reading(20), { "idempotency-key": key });
    const answers = await Promise.all([send("r-1"), send("r-1")].map((p) => p.then((r) => r.json())));
    const again = await send("r-1").then((r) => r.json());
    assert.equal(answers[0].result.taskId, answers[1].result.taskId);
    assert.equal(again.result.taskId, answers[0].result.taskId);
    const other = await send("r-2").then((r) => r.json());
    assert.notEqual(other.result.taskId, answers[0].result.taskId);
    const pump = await waitFor(async () => {
      const p = await s.admin("/pumps/pump-9").then((r) => r.json());
      return p.readings >= 2 ? p : undefined;
    });
    await new Promise((r) => setTimeout(r, 300)); // a duplicate, if queued, would land by now
    assert.equal((await s.admin("/pumps/pump-9").then((r) => r.json())).readings, pump.readings);
    assert.equal(pump.readings, 2);
  } finally {
    await s.close();
  }
});

inBothModes(
  "an Idempotency-Key belongs to one script, and an answer too big to keep makes a resend a 409",
  async (mode) => {
    const s = await startTestSluice(mode);
    try {
      const token = await s.device("pump-k");
      const call = (path: string, body: unknown) => post(`${s.url}/${path}`, token, body, { "idempotency-key": "k-1" });
      const echoed = await call("test/echo", { n: 1 }).then((r) => r.json());
      assert.deepEqual(echoed.echoed, { n: 1 });
      assert.deepEqual((await call("test/echo", { n: 2 }).then((r) => r.json())).echoed, { n: 1 }, "the first answer");
      const napped = await call("test/nap", {}).then((r) => r.json());
      assert.deepEqual(napped, { napped: true }, "another script runs with the same key");
      const big = "x".repeat(20_000);
      const first = await post(`${s.url}/test/echo`, token, { big }, { "idempotency-key": "k-big" });
      assert.equal(first.status, 200);
      assert.equal((await first.json()).echoed.big, big);
      const resend = await post(`${s.url}/test/echo`, token, { big }, { "idempotency-key": "k-big" });
      assert.equal(resend.status, 409);
      assert.match((await resend.json()).error.message, /too big to keep/);
    } finally {
      await s.close();
    }
  },
);
