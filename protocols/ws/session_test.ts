import assert from "node:assert/strict";
import type { Principal } from "../../core/envelope.ts";
import type { Sluice } from "../../sluice.ts";
import { MAX_WAITING_CHARS, type SocketPort, TOO_MANY_WAITING, WsSession } from "./session.ts";
import { WaitingBudget } from "./waiting_budget.ts";

/** A socket that records how it was closed. */
function fakeSocket(): SocketPort & { closed: { code: number; reason: string } | null } {
  const socket = {
    closed: null as { code: number; reason: string } | null,
    send: () => {},
    bufferedAmount: () => 0,
    close: (code: number, reason: string) => socket.closed = { code, reason },
  };
  return socket;
}

/** A session whose `Authenticate` never answers, so every frame after it waits. */
function heldSession(socket: SocketPort, budget?: WaitingBudget): WsSession {
  const never = () => new Promise<Principal>(() => {});
  const session = new WsSession({} as Sluice, socket, { kind: "anonymous" }, 1 << 20, never, budget);
  session.handle(JSON.stringify({ method: "Authenticate", params: { token: "held" } }));
  return session;
}

const bigFrame = JSON.stringify({ method: "Publish", params: { channel: "c", message: "x".repeat(48_000) } });

Deno.test("a WebSocket session whose waiting frames pass 4 Mi characters is closed, long before 1,000 frames", () => {
  const socket = fakeSocket();
  const session = heldSession(socket);
  let sent = 0;
  while (!socket.closed && sent < 200) session.handle(bigFrame), sent++;
  assert.deepEqual(socket.closed, TOO_MANY_WAITING);
  assert.equal(sent, Math.floor(MAX_WAITING_CHARS / bigFrame.length) + 1);
  assert.ok(session.disposed);
});

Deno.test("sessions together hold no more waiting frames than the shared budget; the one that passes it is closed", () => {
  const budget = new WaitingBudget(1024 * 1024);
  const first = fakeSocket();
  const second = fakeSocket();
  const a = heldSession(first, budget);
  const b = heldSession(second, budget);
  for (let i = 0; i < 12; i++) a.handle(bigFrame);
  for (let i = 0; i < 12 && !second.closed; i++) b.handle(bigFrame);
  assert.equal(first.closed, null, "the first stays within the budget");
  assert.deepEqual(second.closed, TOO_MANY_WAITING);
  assert.ok(budget.used <= budget.max);
});
