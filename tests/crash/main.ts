/**
 * `deno task test:crash`: the long crash test. Flags: --devices 20 --per-device 300 --kills 10.
 * Prints its figures and exits 1 on any loss, duplicate or reorder.
 */
import { parseArgs } from "node:util";
import { httpProtocol, runCrashTest } from "./crash_run.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    devices: { type: "string", default: "20" },
    "per-device": { type: "string", default: "300" },
    kills: { type: "string", default: "10" },
  },
});
const devices = Number(values.devices), perDevice = Number(values["per-device"]);
const report = await runCrashTest({
  devices,
  perDevice,
  minKills: Number(values.kills),
  killAfterMs: [500, 2000],
  protocols: [httpProtocol],
  timeoutMs: 300_000,
  log: (line) => console.log(line),
});
console.log(
  `sent ${report.sent}, acked ${report.acked}, processed ${report.processed}, lost ${report.lost}, ` +
    `duplicated ${report.duplicated}, out of order ${report.outOfOrder}, tasks ${report.tasks}, ` +
    `stuck ${report.stuck}, kills ${report.kills}, stop exit ${report.stopCode}, ${report.seconds} s`,
);
const ok = report.stopCode === 0 && report.lost === 0 && report.duplicated === 0 && report.outOfOrder === 0 &&
  report.stuck === 0 &&
  report.processed === devices * perDevice && report.tasks === devices * perDevice;
console.log(ok ? "crash test passed" : "crash test FAILED");
Deno.exit(ok ? 0 : 1);
