/**
 * The runs on a worker share its globals, and every value Sluice copies there as JSON (results, queued bodies,
 * messages, documents) goes through the `toJSON` of the built-in prototypes JSON.stringify meets: none but Date's. A
 * script that gives every object (or array, map, error …) a `toJSON`, or replaces Date's, would change the values of
 * every other run, silently. Each copy first looks, undoes such a change and fails with `JsonTampered`.
 */
const GUARDED: readonly (readonly [object, string])[] = [
  [Object.prototype, "Object"],
  [Array.prototype, "Array"],
  [Map.prototype, "Map"],
  [Set.prototype, "Set"],
  [Error.prototype, "Error"],
  [RegExp.prototype, "RegExp"],
  [Function.prototype, "Function"],
  [String.prototype, "String"],
  [Number.prototype, "Number"],
  [Boolean.prototype, "Boolean"],
  [Object.getPrototypeOf(Uint8Array.prototype), "TypedArray"],
];
/** Date's own `toJSON`, as it was before any script ran. */
const DATE_TO_JSON = Object.getOwnPropertyDescriptor(Date.prototype, "toJSON")!;

/** Told when a change cannot be undone (a script made it non-configurable): the worker asks to be replaced. */
export const jsonGuard = { onStuck: (_what: string): void => {} };

/**
 * A script changed what every JSON copy on its worker depends on: this run's values may have been copied wrong. Not
 * permanent: the change is undone first, so the run goes again (the script that keeps making it goes dead after its
 * attempts); one that cannot be undone has the worker replaced.
 */
export class JsonTampered extends Error {
  constructor(what: string, undone: boolean) {
    super(
      `A script changed ${what}, which every value Sluice copies as JSON on this worker goes through: ` +
        `${undone ? "undone" : "it cannot be undone, so the worker is replaced"}, and this run failed in case its ` +
        "values were copied with it (scripts must not change built-in prototypes)",
    );
  }
}

/** Undoes a change a script made to what JSON copies go through; throws `JsonTampered` if there was one. */
export function undoJsonTampering(): void {
  let changed: string[] | undefined;
  let undone = true;
  for (const [proto, name] of GUARDED) {
    if (!Object.hasOwn(proto, "toJSON")) continue;
    (changed ??= []).push(`${name}.prototype.toJSON`);
    undone = Reflect.deleteProperty(proto, "toJSON") && undone;
  }
  if (Date.prototype.toJSON !== DATE_TO_JSON.value) {
    (changed ??= []).push("Date.prototype.toJSON");
    undone = Reflect.defineProperty(Date.prototype, "toJSON", DATE_TO_JSON) && undone;
  }
  if (!changed) return;
  const what = changed.join(" and ");
  if (!undone) jsonGuard.onStuck(what);
  throw new JsonTampered(what, undone);
}
