import assert from "node:assert/strict";
import { checkKvFormat, KV_FORMAT } from "./kv_format.ts";
import { keys } from "./keys.ts";

Deno.test("a KV is marked with this layout; one a newer layout wrote is refused with what to do", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    await checkKvFormat(kv);
    assert.equal((await kv.get(keys.kvFormat())).value, KV_FORMAT);
    await checkKvFormat(kv); // the same layout again: fine
    await kv.set(keys.kvFormat(), KV_FORMAT + 1);
    await assert.rejects(
      checkKvFormat(kv),
      new RegExp(
        `^Error: This KV was written by a newer Sluice \\(KV format ${
          KV_FORMAT + 1
        }; this version reads up to ${KV_FORMAT}\\)`,
      ),
    );
    assert.equal((await kv.get(keys.kvFormat())).value, KV_FORMAT + 1, "left as it was");
  } finally {
    kv.close();
  }
});
