/**
 * A simulated fleet of water pumps, shared by the HTTP, MQTT and AMQP simulators: N pumps at
 * real places, whose temperature and pressure drift in small random steps. Deterministic for a
 * given seed (no `Math.random`, no clock of its own).
 *
 * ```ts
 * const fleet = new Fleet({ size: 3, seed: 7 });
 * const reading = fleet.next(0, Date.UTC(2026, 10, 25)); // pump 0's next reading
 * toCsv(reading); // "21.31,1.204,45.5017:-73.5673,2026-11-25T00:00:00.000Z"
 * ```
 *
 * @module
 */

/** Places with real coordinates (city water works, roughly). */
const PLACES: readonly (readonly [string, number, number])[] = [
  ["Montréal", 45.5017, -73.5673],
  ["Paris", 48.8566, 2.3522],
  ["Lyon", 45.764, 4.8357],
  ["Berlin", 52.52, 13.405],
  ["Nairobi", -1.2921, 36.8219],
  ["São Paulo", -23.5505, -46.6333],
  ["Sydney", -33.8688, 151.2093],
  ["Tokyo", 35.6762, 139.6503],
  ["Cape Town", -33.9249, 18.4241],
  ["Reykjavík", 64.1466, -21.9426],
];

/** One pump of the fleet. */
export interface SimulatedPump {
  /** Device id, `<prefix>-<n>` with n from 1. */
  readonly id: string;
  readonly place: string;
  readonly lat: number;
  readonly lon: number;
}

/** A reading as gateways send it. */
export interface SimulatedReading {
  readonly temperature: number;
  readonly pressure: number;
  /** `lat:lon` */
  readonly coordinates: string;
  /** ISO time the reading was taken. */
  readonly time: string;
}

export interface FleetOptions {
  readonly size: number;
  /** Same seed, same fleet and same readings. */
  readonly seed?: number;
  /** Device id prefix (default `sim`). */
  readonly prefix?: string;
}

interface PumpState {
  temperature: number;
  pressure: number;
}

/** N pumps with drifting temperature (°C, 5–80) and pressure (bar, 0.5–3). */
export class Fleet {
  readonly pumps: readonly SimulatedPump[];
  readonly #state: PumpState[];
  readonly #random: () => number;

  constructor(options: FleetOptions) {
    this.#random = mulberry32(options.seed ?? 1);
    const prefix = options.prefix ?? "sim";
    this.pumps = Array.from({ length: options.size }, (_, i) => {
      const [place, lat, lon] = PLACES[i % PLACES.length]!;
      // Pumps at the same place stand a few hundred metres apart.
      const spread = Math.floor(i / PLACES.length);
      return {
        id: `${prefix}-${i + 1}`,
        place,
        lat: round(lat + spread * 0.003, 4),
        lon: round(lon + spread * 0.003, 4),
      };
    });
    this.#state = this.pumps.map(() => ({
      temperature: 15 + this.#random() * 20,
      pressure: 1 + this.#random() * 0.5,
    }));
  }

  /** The next reading of pump `index`, taken at `at` (ms). */
  next(index: number, at: number): SimulatedReading {
    const pump = this.pumps[index];
    const s = this.#state[index];
    if (!pump || !s) throw new RangeError(`No pump ${index} in a fleet of ${this.pumps.length}`);
    s.temperature = clamp(s.temperature + (this.#random() - 0.5) * 0.6, 5, 80);
    s.pressure = clamp(s.pressure + (this.#random() - 0.5) * 0.04, 0.5, 3);
    return {
      temperature: round(s.temperature, 2),
      pressure: round(s.pressure, 3),
      coordinates: `${pump.lat}:${pump.lon}`,
      time: new Date(at).toISOString(),
    };
  }
}

/** The seed's CSV form: `temperature,pressure,lat:lon,time`. */
export function toCsv(r: SimulatedReading): string {
  return `${r.temperature},${r.pressure},${r.coordinates},${r.time}`;
}

/** The seed's MQTT/AMQP invoke payload for a reading. */
export function invokePayload(r: SimulatedReading): string {
  return JSON.stringify({ method: "blog/queues/processor", params: { data: toCsv(r) } });
}

/** A small seeded PRNG (mulberry32): numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
