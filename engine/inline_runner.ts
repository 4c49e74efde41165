import { ScriptFailedError, ValidationError } from "../core/errors.ts";
import type { Committer } from "../store/committer.ts";
import type { EffectPlanner, EffectSource } from "./effect_planner.ts";
import type { ScriptRequest } from "./script_api.ts";
import type { ScriptExecutor } from "./script_pool.ts";

/**
 * Runs a public script for an HTTP (or WebSocket) call and answers with what it returned,
 * once its writes (tasks it queued, messages, readings) have landed.
 */
export class InlineRunner {
  constructor(
    private readonly executor: ScriptExecutor,
    private readonly planner: EffectPlanner,
    private readonly committer: Committer,
  ) {}

  /** Runs a public script for a device's call (HTTP `POST /<path>`, a WebSocket frame). */
  callFor(method: string, body: unknown, device: string, receivedAt: number): Promise<unknown> {
    const request: ScriptRequest = {
      method,
      body: body ?? null,
      params: body ?? null,
      device,
      attempt: 1,
      receivedAt: new Date(receivedAt).toISOString(),
    };
    return this.call(request, { device, receivedAt });
  }

  async call(request: ScriptRequest, source: EffectSource): Promise<unknown> {
    const [outcome] = await this.executor.run([request]);
    if (!outcome) throw new ScriptFailedError(`Script "${request.method}" did not run`);
    if (!outcome.ok) {
      if (outcome.permanent) throw new ValidationError(outcome.error);
      throw new ScriptFailedError(`Script "${request.method}" failed: ${outcome.error}`);
    }
    const plan = await this.planner.plan(outcome.effects, source, outcome.reads);
    if (!plan.empty) plan.landed(await this.committer.write({ ...plan.toRequest(), urgent: true }));
    return outcome.result;
  }
}
