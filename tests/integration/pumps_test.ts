import { inTimeZone } from "../helpers/time_zone.ts";
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { inBothModes, integration, post, startTestSluice, type TestSluice, waitFor } from "../helpers/sluice.ts";

const reading = (t: number, time: string, coordinates = "45.5:-73.5") => ({
  temperature: String(t),
  pressure: "1.5",
  coordinates,
  time,
});

/** Feeds a reading and waits until the pump's state has `version` events. */
async function feed(s: TestSluice, token: string, pump: string, body: unknown, version: number) {
  const res = await post(`${s.url}/blog/queues/feed`, token, body);
  assert.equal(res.status, 200, await res.text());
  return await waitFor(async () => {
    const r = await s.admin(`/pumps/${pump}`);
    const state = r.status === 200 ? await r.json() : (await r.body?.cancel(), null);
    return state?.version === version ? state : null;
  });
}

async function taskOf(s: TestSluice, id: string, status: string) {
  return await waitFor(
    async () => {
      const t = await (await s.admin(`/tasks/${id}`)).json();
      return t.status === status ? t : null;
    },
    10_000,
    `task ${id} ${status}`,
  );
}

inBothModes("an implausible reading is refused at once with the field and the accepted range", async (mode) => {
  const s = await startTestSluice(mode);
  try {
    const token = await s.device("huge");
    const cases: [unknown, RegExp][] = [
      [reading(1.7e308, "2026-11-25T10:00:00Z"), /temperature 1\.7e\+308 is out of range: accepted from -100 to 200/],
      [{ ...reading(20, "2026-11-25T10:00:00Z"), pressure: "-1" }, /pressure -1 is out of range: .* 0 to 1000 bar/],
      [{ ...reading(20, "2026-11-25T10:00:00Z"), pressure: "0x1A" }, /no valid pressure/],
      [reading(20, "2026-11-25T10:00:00Z", "1:1:5"), /no valid coordinates/],
      [reading(20, "Pump 7"), /no valid time: "Pump 7"/],
      [reading(20, "3000-01-01T00:00:00Z"), /time "3000-01-01T00:00:00Z" is out of range/],
    ];
    for (const [body, message] of cases) {
      const res = await post(`${s.url}/blog/queues/feed`, token, body);
      const { error } = await res.json();
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(error.message, message);
    }
    // Queued straight to the processor, such a reading is a dead task at once, and no pump state is made.
    const res = await post(`${s.url}/channels/blog_queuing/invoke`, token, {
      method: "blog/queues/processor",
      params: { data: "1.7e308,1,1:1,2026-11-25T10:00:00Z" },
    });
    const dead = await taskOf(s, (await res.json()).taskId, "dead");
    assert.equal(dead.attempts, 1);
    assert.match(dead.error, /temperature 1\.7e\+308 is out of range/);
    const pump = await s.admin("/pumps/huge");
    assert.equal(pump.status, 404);
    await pump.body?.cancel();
  } finally {
    await s.close();
  }
});

inBothModes("a pump id or reading that ctx.pumps.record cannot keep fails the script, not the server", async (mode) => {
  const s = await startTestSluice({ ...mode, MAX_ATTEMPTS: "5" });
  try {
    const token = await s.device("rec");
    const good = { temperature: 20, pressure: 1, coordinates: { lat: 1, lon: 1 }, time: "2026-11-25T10:00:00Z" };
    const cases: [unknown, RegExp][] = [
      [{ reading: good, pumpId: "a/b" }, /Pump id "a\/b" is not valid: must be 1–64 letters/],
      [{ reading: good, pumpId: "x y" }, /Pump id "x y" is not valid/],
      [{ reading: good, pumpId: "ü-pump" }, /Pump id "ü-pump" is not valid/],
      [{ reading: good, pumpId: "p".repeat(3000) }, /Pump id "p{80}…" is not valid/],
      [{ reading: { ...good, temperature: "20" } }, /no valid temperature: "20"/],
      [{ reading: { ...good, coordinates: { lat: 100, lon: 0 } } }, /no valid coordinates/],
      [{ reading: { ...good, time: "yesterday" } }, /no valid time: "yesterday"/],
      [{ reading: null }, /must be an object/],
    ];
    for (const [params, message] of cases) {
      // Inline: the script's mistake, said as such, naming the script.
      const res = await post(`${s.url}/test/record`, token, params);
      const { error } = await res.json();
      assert.equal(res.status, 500, JSON.stringify(params).slice(0, 100));
      assert.equal(error.code, "script_failed");
      assert.match(error.message, /Script "test\/record" made a write Sluice refused: /);
      assert.match(error.message, message);
      // Queued: dead at once, not retried.
      const queued = await post(`${s.url}/channels/blog_queuing/invoke`, token, { method: "test/record", params });
      const dead = await taskOf(s, (await queued.json()).taskId, "dead");
      assert.equal(dead.attempts, 1, JSON.stringify(params).slice(0, 100));
      assert.match(dead.error, message);
    }
    assert.deepEqual((await (await s.admin("/pumps")).json()).pumps, [], "no pump was made");
    // A valid reading and id still work.
    const ok = await post(`${s.url}/test/record`, token, { reading: good, pumpId: "other-pump.1" });
    assert.equal(ok.status, 200, await ok.text());
    assert.equal((await (await s.admin("/pumps/other-pump.1")).json()).readings, 1);
  } finally {
    await s.close();
  }
});

inBothModes(
  "the _pumps feed keeps its messages PUMPS_RETENTION, a channel's own messages TOPIC_RETENTION",
  async (mode) => {
    const s = await startTestSluice({ ...mode, PUMPS_RETENTION: "90s" });
    try {
      // Local Deno KV deletes expired keys in the background (up to a minute late, and reads still
      // see them until then), so the expiry each message was written with is read from the file.
      const expiries = (stream: string): number[] => {
        const db = new DatabaseSync(`${s.kvDir}/sluice.kv`, { readOnly: true });
        try {
          const part = new TextEncoder().encode(`\u0002${stream}\u0000`); // a key part as KV encodes a string
          const rows = db.prepare("SELECT expiration_ms AS e FROM kv WHERE instr(k, ?) > 0").all(part);
          return rows.map((r) => Number(r.e)).filter((e) => e > 0); // the messages (the stream may hold a key of its own)
        } finally {
          db.close();
        }
      };
      const token = await s.device("fleeting");
      const before = Date.now();
      await feed(s, token, "fleeting", reading(20, "2026-11-25T10:00:00Z"), 1);
      const published = await post(`${s.url}/channels/blog_queuing/messages`, token, { note: "kept" });
      assert.equal(published.status, 202, await published.text());
      const [feedExpiry] = await waitFor(() => expiries("m/_pumps").length ? expiries("m/_pumps") : null);
      const [ownExpiry] = await waitFor(() => expiries("m/blog_queuing").length ? expiries("m/blog_queuing") : null);
      const after = Date.now();
      assert.ok(
        feedExpiry! >= before + 90_000 && feedExpiry! <= after + 90_000,
        `_pumps expires ${feedExpiry! - after} ms on`,
      );
      const week = 7 * 24 * 3_600_000;
      assert.ok(
        ownExpiry! >= before + week && ownExpiry! <= after + week,
        `blog_queuing expires ${ownExpiry! - after} ms on`,
      );
      const pump = await (await s.admin("/pumps/fleeting")).json();
      assert.equal(pump.readings, 1, "the pump's state is the record, whatever the feed keeps");
    } finally {
      await s.close();
    }
  },
);

integration("the history of a pump with no readings is a 404 whatever `from`", async () => {
  const s = await startTestSluice();
  try {
    for (const path of ["/pumps/nosuch/events", "/pumps/nosuch/events?from=5", "/pumps/nosuch/events?from=1000"]) {
      const res = await s.admin(path);
      assert.equal(res.status, 404, path);
      assert.equal((await res.json()).error.code, "not_found");
    }
    const token = await s.device("hist");
    await feed(s, token, "hist", reading(20, "2026-11-25T10:00:00Z"), 1);
    const past = await (await s.admin("/pumps/hist/events?from=5")).json();
    assert.deepEqual(past, { events: [], next: null }, "past the end of an existing pump's history: an empty page");
  } finally {
    await s.close();
  }
});

integration("the outside temperature is cleared when the pump moved and the weather lookup failed", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("mover");
    const first = await feed(s, token, "mover", reading(20, "2026-11-25T10:00:00Z", "10:10"), 1);
    assert.equal(first.outsideTemperature, 4.5);
    s.weather.mode = "fail";
    const moved = await feed(s, token, "mover", reading(22, "2026-11-25T10:02:00Z", "20:20"), 2);
    assert.equal(moved.lastReading.outsideTemperature, undefined);
    assert.equal(moved.outsideTemperature, null);
    assert.equal(moved.outsideTemperatureAt, null);
    s.weather.mode = "ok";
    const back = await feed(s, token, "mover", reading(21, "2026-11-25T10:03:00Z", "10:10"), 3);
    assert.deepEqual([back.outsideTemperature, back.outsideTemperatureAt], [4.5, "2026-11-25T10:03:00.000Z"]);
  } finally {
    await s.close();
  }
});

integration("a reading that arrives late does not replace the latest one taken", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("late");
    await feed(s, token, "late", reading(20, "2026-11-25T10:05:00Z"), 1);
    const state = await feed(s, token, "late", reading(30, "2026-11-25T10:00:00Z"), 2);
    assert.equal(state.lastReading.time, "2026-11-25T10:05:00.000Z");
    assert.equal(state.lastReading.temperature, 20);
    assert.equal(state.readings, 2);
    assert.equal(state.temperature.max, 30);
  } finally {
    await s.close();
  }
});

integration("time travel to a state's updatedAt gives that state back", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("upd");
    const v1 = await feed(s, token, "upd", reading(20, "2026-11-25T10:00:00Z"), 1);
    assert.match(v1.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await new Promise((r) => setTimeout(r, 5)); // the next commit lands in a later millisecond
    const v2 = await feed(s, token, "upd", reading(21, "2026-11-25T10:01:00Z"), 2);
    assert.ok(v2.updatedAt > v1.updatedAt);
    const at = async (q: string) => await (await s.admin(`/pumps/upd?at=${encodeURIComponent(q)}`)).json();
    assert.deepEqual(await at(v1.updatedAt), v1);
    assert.deepEqual(await at(v2.updatedAt), v2);
  } finally {
    await s.close();
  }
});

integration("time travel reads a time without a zone as UTC, and refuses a day not in the calendar", async () => {
  const s = await startTestSluice();
  try {
    const token = await s.device("tz");
    await feed(s, token, "tz", reading(20, "2026-11-25T10:00:00Z"), 1);
    const [event] = (await (await s.admin("/pumps/tz/events")).json()).events;
    // The first event's commit time without its zone, asked of a server whose time zone is not UTC.
    const state = await inTimeZone(
      "Asia/Tokyo",
      async () => await (await s.admin(`/pumps/tz?at=${encodeURIComponent(event.at.slice(0, -1))}`)).json(),
    );
    assert.equal(state.version, 1);
    for (const bad of ["2026-02-31T00:00:00Z", "2026-11-25T24:00:00Z", "Pump 7", "1e3"]) {
      const res = await s.admin(`/pumps/tz?at=${encodeURIComponent(bad)}`);
      const { error } = await res.json();
      assert.equal(res.status, 400, bad);
      assert.match(error.message, /is neither a version nor an ISO 8601 time/);
    }
    // A zone's + left unencoded in the URL arrives as a space: the answer says so.
    const plus = await s.admin(`/pumps/tz?at=2026-11-25T10:00:00+02:00`);
    assert.equal(plus.status, 400);
    assert.match((await plus.json()).error.message, /a \+ in a URL's query is read as a space, write it %2B$/);
    const huge = await s.admin(`/pumps/tz?at=${"9".repeat(24)}`);
    assert.equal(huge.status, 400);
    assert.match((await huge.json()).error.message, /^Invalid query\.at: version 9{24} is over 9007199254740991$/);
  } finally {
    await s.close();
  }
});

integration("the OpenAPI document describes the pump routes' answers and errors", async () => {
  const s = await startTestSluice();
  try {
    const doc = await (await fetch(`${s.url}/openapi.json`)).json();
    const responses = (path: string) => doc.paths[path].get.responses;
    const statuses = (path: string) => Object.keys(responses(path)).sort();
    assert.deepEqual(statuses("/pumps"), ["200", "400", "401", "429", "500", "503"]);
    assert.deepEqual(statuses("/pumps/{id}"), ["200", "400", "401", "403", "404", "429", "500", "503"]);
    assert.deepEqual(statuses("/pumps/{id}/events"), ["200", "400", "401", "403", "404", "429", "500", "503"]);
    const schemaOf = (path: string) => responses(path)["200"].content["application/json"].schema.$ref;
    assert.equal(schemaOf("/pumps"), "#/components/schemas/PumpList");
    assert.equal(schemaOf("/pumps/{id}"), "#/components/schemas/PumpState");
    assert.equal(schemaOf("/pumps/{id}/events"), "#/components/schemas/PumpEvents");
    const state = doc.components.schemas.PumpState;
    for (const field of ["lastReading", "outsideTemperature", "outsideTemperatureAt", "lastSeen", "updatedAt"]) {
      assert.ok(state.properties[field], field);
    }
  } finally {
    await s.close();
  }
});

integration("reading pumps that do not exist keeps no pump actor in memory", async () => {
  const s = await startTestSluice();
  try {
    const live = async () => {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      return Number(/^sluice_pumps_live (\d+)$/m.exec(text)![1]);
    };
    const before = await live();
    for (let i = 0; i < 30; i++) {
      const res = await s.admin(`/pumps/nobody-${i}${i % 2 ? "?at=1" : ""}`);
      assert.equal(res.status, 404);
      await res.body?.cancel();
    }
    assert.equal(await live(), before);
  } finally {
    await s.close();
  }
});

inBothModes(
  "with READING_RETENTION a trimmed pump keeps its state, across a restart, and its history starts later",
  async (mode) => {
    const s = await startTestSluice({ ...mode, READING_RETENTION: "1h" });
    try {
      const token = await s.device("trimmed");
      for (let i = 1; i <= 4; i++) await feed(s, token, "trimmed", reading(10 * i, `2026-11-25T10:0${i}:00Z`), i);
      const before = await (await s.admin("/pumps/trimmed")).json();
      const atThree = await (await s.admin("/pumps/trimmed?at=3")).json();
      // A sweep past the pump's every event (as once they are an hour old) keeps only its newest.
      const trimmer = s.server.sluice.trimmer!;
      assert.equal(await trimmer.trim("p/trimmed", Date.now() + 1), 3);
      assert.deepEqual(await (await s.admin("/pumps/trimmed")).json(), before);
      assert.deepEqual(await (await s.admin("/pumps/trimmed?at=3")).json(), atThree);
      const gone = await s.admin("/pumps/trimmed?at=2");
      assert.equal(gone.status, 404);
      assert.match((await gone.json()).error.message, /before version 4 is no longer kept \(READING_RETENTION\)/);
      const history = await (await s.admin("/pumps/trimmed/events?from=1")).json();
      assert.deepEqual(history.events.map((e: { seq: number }) => e.seq), [4]);
      assert.match(await (await fetch(`${s.url}/metrics`)).text(), /^sluice_pump_events_trimmed_total 3$/m);

      await s.restart(); // no snapshot yet (every 100 events): the state comes from the trimmed log's base
      assert.deepEqual(await (await s.admin("/pumps/trimmed")).json(), before);
      const after = await feed(s, token, "trimmed", reading(50, "2026-11-25T10:05:00Z"), 5);
      assert.equal(after.readings, 5);
      assert.equal(after.temperature.max, 50);
      assert.equal(after.temperature.min, 10);
    } finally {
      await s.close();
    }
  },
);
