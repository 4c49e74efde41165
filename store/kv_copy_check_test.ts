import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { checkKvCopy } from "./kv_copy_check.ts";
import { keys } from "./keys.ts";

Deno.test("a copy whose log Deno KV leaves behind when it closes is folded into the file itself", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-copy-check-" });
  try {
    const path = `${dir}/copy.kv`;
    const kv = await Deno.openKv(path);
    await kv.set(keys.channelDefaults(), true);
    // Another connection on the file: closing Deno KV's then leaves its log, as a slow close does.
    const other = new DatabaseSync(path, { readOnly: true });
    other.prepare("SELECT count(*) FROM kv").get(); // it has the log open from here on
    try {
      await kv.atomic().set(keys.device("pump-1"), { id: "pump-1" }).set(keys.channel("c"), { name: "c" }).commit();
      kv.close();
      const check = await checkKvCopy(path);
      assert.equal(check.devices, 1);
    } finally {
      other.close();
    }
    // The file alone, as it is moved into place, holds everything.
    await Deno.copyFile(path, `${dir}/alone.kv`);
    const alone = await Deno.openKv(`${dir}/alone.kv`);
    try {
      const [device, channel] = await alone.getMany([keys.device("pump-1"), keys.channel("c")]);
      assert.deepEqual([device.value, channel.value], [{ id: "pump-1" }, { name: "c" }]);
    } finally {
      alone.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
