import assert from "node:assert/strict";
import type { ChannelConfig } from "../../store/channel_registry.ts";
import { subscribeRefusal } from "./subscribe_acl.ts";

const maySubscribe = async (...args: Parameters<typeof subscribeRefusal>) => (await subscribeRefusal(...args)) === null;

const channels = {
  get: (name: string) =>
    Promise.resolve(
      ({ open: { anonymousSubscribe: true }, closed: { anonymousSubscribe: false } } as Record<string, unknown>)[
        name
      ] as ChannelConfig ?? null,
    ),
};
const device = { kind: "device", id: "pump-1" } as const;
const admin = { kind: "admin" } as const;
const anonymous = { kind: "anonymous" } as const;

Deno.test("devices and the admin subscribe to existing channels; nobody to unknown ones", async () => {
  assert.equal(await maySubscribe(device, "closed", channels), true);
  assert.equal(await maySubscribe(admin, "closed", channels), true);
  assert.equal(await maySubscribe(device, "nowhere", channels), false);
});

Deno.test("anonymous sessions only where the channel allows it", async () => {
  assert.equal(await maySubscribe(anonymous, "open", channels), true);
  assert.equal(await maySubscribe(anonymous, "closed", channels), false);
});

Deno.test("Sluice's own channels only for the admin", async () => {
  assert.equal(await maySubscribe(admin, "_pumps", channels), true);
  assert.equal(await maySubscribe(device, "_pumps", channels), false);
});

Deno.test("a refusal says why, without quoting a filter that may hold a token", async () => {
  const why = async (...args: Parameters<typeof subscribeRefusal>) => {
    const err = await subscribeRefusal(...args);
    return err && [err.code, err.message] as const;
  };
  assert.deepEqual(await why(device, "nowhere", channels), ["not_found", 'Channel "nowhere" does not exist']);
  assert.deepEqual(await why(anonymous, "closed", channels), [
    "unauthorized",
    'Channel "closed" does not accept anonymous subscribers',
  ]);
  assert.deepEqual(await why(device, "_pumps", channels), ["forbidden", 'Channel "_pumps" needs the admin token']);
  const [code, message] = (await why(device, null, channels))!;
  assert.equal(code, "validation_failed");
  assert.match(message, /Only <channel>\/messages/);
});
