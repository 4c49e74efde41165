/**
 * A deterministic fleet of water pumps for the simulators (any protocol): each pump sits at a real
 * place and its temperature and pressure drift a little with every reading. Same seed, same fleet.
 *
 * @module
 */

/** A reading as the sample gateways send it. */
export interface FleetReading {
  readonly temperature: number;
  readonly pressure: number;
  /** `lat:lon` */
  readonly coordinates: string;
  /** ISO time */
  readonly time: string;
}

/** One simulated pump. */
export interface Pump {
  readonly id: string;
  readonly lat: number;
  readonly lon: number;
  temperature: number;
  pressure: number;
  /** Readings taken so far. */
  sent: number;
}

export interface FleetOptions {
  readonly devices: number;
  /** Device ids are `<prefix>-<n>`. */
  readonly prefix: string;
  readonly seed?: number;
}

/** Places the pumps are spread over (latitude, longitude). */
const PLACES: readonly (readonly [number, number])[] = [
  [45.5017, -73.5673], // Montréal
  [48.8566, 2.3522], // Paris
  [51.5072, -0.1276], // London
  [40.7128, -74.006], // New York
  [35.6762, 139.6503], // Tokyo
  [-33.8688, 151.2093], // Sydney
  [52.52, 13.405], // Berlin
  [19.4326, -99.1332], // Mexico City
  [-23.5505, -46.6333], // São Paulo
  [1.3521, 103.8198], // Singapore
  [28.6139, 77.209], // New Delhi
  [-1.2921, 36.8219], // Nairobi
];

/** A small seeded PRNG (mulberry32): numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** N pumps with drifting readings. */
export class Fleet {
  readonly pumps: Pump[];
  readonly #random: () => number;

  constructor(options: FleetOptions) {
    this.#random = seededRandom(options.seed ?? 42);
    this.pumps = Array.from({ length: options.devices }, (_, n) => {
      const [lat, lon] = PLACES[n % PLACES.length]!;
      return {
        id: `${options.prefix}-${n}`,
        // Spread pumps of the same place over a few kilometres.
        lat: round(lat + (this.#random() - 0.5) * 0.1, 4),
        lon: round(lon + (this.#random() - 0.5) * 0.1, 4),
        temperature: round(15 + this.#random() * 15, 1),
        pressure: round(1 + this.#random(), 2),
        sent: 0,
      };
    });
  }

  /** The next reading of a pump: a small random walk, kept in a plausible range. */
  next(pump: Pump, time: Date): FleetReading {
    pump.temperature = round(clamp(pump.temperature + (this.#random() - 0.5) * 0.6, -10, 60), 1);
    pump.pressure = round(clamp(pump.pressure + (this.#random() - 0.5) * 0.04, 0.5, 3), 2);
    pump.sent++;
    return {
      temperature: pump.temperature,
      pressure: pump.pressure,
      coordinates: `${pump.lat}:${pump.lon}`,
      time: time.toISOString(),
    };
  }
}

/** The CSV form the MQTT and AMQP gateways send: `temperature,pressure,lat:lon,time`. */
export function toCsv(r: FleetReading): string {
  return `${r.temperature},${r.pressure},${r.coordinates},${r.time}`;
}

/** The invoke body of the sample application for a reading. */
export function processorInvoke(r: FleetReading): { method: string; params: { data: string } } {
  return { method: "blog/queues/processor", params: { data: toCsv(r) } };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}
