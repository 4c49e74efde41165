/** A reading as the pump log keeps it. */
export interface Reading {
  readonly temperature: number;
  readonly pressure: number;
  readonly coordinates: { readonly lat: number; readonly lon: number };
  /** When the device took it, ISO time. */
  readonly time: string;
  readonly outsideTemperature?: number;
}

/** The pump recorded a reading. `receivedAt` is when Sluice received the message (ms). */
export interface ReadingRecorded {
  readonly type: "ReadingRecorded";
  readonly data: { readonly reading: Reading; readonly receivedAt: number; readonly taskId?: string };
}

/** Every event of a pump's log. */
export type PumpEvent = ReadingRecorded;

/** Record a reading (checked first; a script may give a null `outsideTemperature`, which the log leaves out). */
export interface RecordReading {
  readonly type: "RecordReading";
  readonly reading: Omit<Reading, "outsideTemperature"> & { readonly outsideTemperature?: number | null };
  readonly receivedAt: number;
  readonly taskId?: string;
}

/** Every command a pump accepts. */
export type PumpCommand = RecordReading;
