import type { Clock } from "../../core/clock.ts";
import type { Envelope, Principal } from "../../core/envelope.ts";
import {
  describeError,
  type ErrorCode,
  ForbiddenError,
  PayloadTooLargeError,
  SluiceError,
  UnauthorizedError,
} from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { LogBudget } from "../../core/log_budget.ts";
import type { Ingest } from "../../engine/ingest.ts";
import type { DeviceDirectory } from "../../store/device_directory.ts";
import type { RefusedLog } from "../../store/refused_log.ts";
import { looksLikeToken } from "../../core/names.ts";
import { type Outcome, outcomeOf, type Stage } from "./outcome.ts";
import { decodePayload } from "./payload.ts";
import { parsePublishTopic, type PublishRoute } from "./routes.ts";
import { type Session, stringProblem } from "./session.ts";

const ACCEPTED: Outcome = { kind: "accepted" };

/** Counts of what happened to publishes (for `/metrics` and tests). */
export interface MqttStats {
  accepted: number;
  refused: number;
  quota: number;
  forbidden: number;
  retried: number;
}

export interface PublishHandlerOptions {
  readonly ingest: Ingest;
  readonly devices: DeviceDirectory;
  readonly refused: RefusedLog;
  readonly clock: Clock;
  /** `MAX_BODY_BYTES`: a payload is measured as received, as HTTP measures a body (a JSON string with its quotes). */
  readonly maxBodyBytes: number;
  /** Where failures that are no refusal (a defect) are told; the publish is not acknowledged and comes again. */
  readonly log?: Logger;
}

/**
 * Turns one MQTT publish into an envelope, hands it to ingest and says what to answer. It
 * resolves only after the commit (or the refusal record is queued), so the caller can hold the
 * PUBACK until then. Shared by the embedded broker and the external-broker subscriber.
 */
export class PublishHandler {
  readonly stats: MqttStats = { accepted: 0, refused: 0, quota: 0, forbidden: 0, retried: 0 };

  /** A publish that fails the same unexpected way comes again at every reconnect: told ten times a minute at most. */
  readonly #unexpected: LogBudget;

  constructor(private readonly options: PublishHandlerOptions) {
    this.#unexpected = new LogBudget(
      (line) => options.log?.error(line),
      10,
      60_000,
      (n) => `${n} more MQTT publish(es) failed unexpectedly within the minute (not acknowledged, sent again)`,
    );
  }

  /** Tells what the log budget held back (on stop). */
  close(): void {
    this.#unexpected.flush();
  }

  async handle(session: Session, topic: string, payload: Uint8Array): Promise<Outcome> {
    if (session.revoked) {
      // Its disconnection is under way; a last publish (or its will) must not slip in.
      this.stats.forbidden++;
      return { kind: "forbidden", reason: "The session's device was revoked" };
    }
    let stage: Stage | "accept" = "topic";
    let route: PublishRoute | null = null;
    let principal: Principal | null = null;
    try {
      // Even in the token level, where the route would be read as an unknown token (acknowledged): the connection
      // must close [MQTT-1.5.3-1], [MQTT-1.5.3-2].
      const problem = stringProblem("Topic", topic);
      if (problem) throw new ForbiddenError(problem);
      route = parsePublishTopic(topic);
      if (!route) {
        throw new ForbiddenError(
          "Topic is not a Sluice route: publish on <channel>/invoke or <channel>/messages (as the device the session " +
            "logged in as), or <token>/<channel>/invoke|messages",
        );
      }
      principal = await this.#principal(session, route);
      stage = "ingest";
      const max = this.options.maxBodyBytes;
      if (payload.byteLength > max) {
        throw new PayloadTooLargeError(`Message is ${payload.byteLength} bytes, over the limit of ${max}`);
      }
      const decoded = decodePayload(route.kind, payload);
      const envelope: Envelope = {
        principal,
        channel: route.channel,
        kind: route.kind,
        body: decoded.body,
        unparsedText: !decoded.json,
        protocol: "mqtt",
        receivedAt: this.options.clock.now(),
        ...(session.external ? { brokered: true as const } : {}),
      };
      stage = "accept";
      await this.options.ingest.accept(envelope);
      this.stats.accepted++;
      return ACCEPTED;
    } catch (err) {
      const outcome = outcomeOf(err, stage === "accept" ? "ingest" : stage);
      if (!(err instanceof SluiceError) || err.code === "internal") {
        this.#unexpected.say(
          `MQTT publish on ${route?.channel ?? "?"} failed unexpectedly (not acknowledged, the client sends it ` +
            `again): ${describeError(err)}`,
        );
      }
      // Ingest counts what it refuses; what never reached it is counted here (a retry is not a refusal).
      if (stage !== "accept" && outcome.kind !== "retry") this.options.ingest.refused("mqtt", err);
      this.#count(outcome, session, route, principal, payload);
      return outcome;
    }
  }

  /** Who sends: the session itself, or the device whose token is in the topic. */
  async #principal(session: Session, route: PublishRoute): Promise<Principal> {
    if (route.token === undefined) {
      if (session.external) throw new ForbiddenError("An external broker's topics must carry a device token");
      return session.principal;
    }
    if (!looksLikeToken(route.token)) {
      // `channels/<ch>/invoke` copied from the HTTP path, or a device id where the token goes: refused
      // (acknowledged, recorded) as an unknown token would be, with a hint.
      throw new UnauthorizedError(
        "The topic's first level is not a device token (sl_…): a session logged in as a device publishes on " +
          "<channel>/invoke or <channel>/messages, with no first level",
      );
    }
    const device = await this.options.devices.authenticate(route.token);
    if (device === null) throw new UnauthorizedError("Unknown or revoked token in the topic");
    const own = session.external || session.principal.kind === "anonymous" ||
      (session.principal.kind === "device" && session.principal.id === device);
    if (!own) throw new ForbiddenError("The topic carries a token that is not the session's own");
    return { kind: "device", id: device };
  }

  #count(
    outcome: Outcome,
    session: Session,
    route: PublishRoute | null,
    principal: Principal | null,
    payload: Uint8Array,
  ): void {
    switch (outcome.kind) {
      case "accepted":
        return;
      case "quota":
        this.stats.quota++;
        return;
      case "retry":
        this.stats.retried++;
        return;
      case "forbidden":
        this.stats.forbidden++;
        // Recorded with its reason, so that a device that keeps being disconnected can be told why (an
        // external broker's client cannot be disconnected from here at all: the record is all there is).
        this.#record(session, route, principal, "forbidden", outcome.reason, payload);
        return;
      case "refused":
        this.stats.refused++;
        this.#record(session, route, principal, outcome.code, outcome.reason, payload);
        return;
    }
  }

  #record(
    session: Session,
    route: PublishRoute | null,
    principal: Principal | null,
    code: ErrorCode,
    reason: string,
    payload: Uint8Array,
  ): void {
    const who = principal ?? session.principal;
    this.options.refused.record({
      protocol: "mqtt",
      device: who?.kind === "device" ? who.id : null,
      ...(route ? { channel: route.channel } : {}),
      code,
      reason,
      payload,
    });
  }
}
