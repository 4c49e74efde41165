/// <reference lib="deno.worker" />
/** The script worker for the scripts in `scripts/manifest.ts`. */
import { manifest } from "../scripts/manifest.ts";
import { serveWorker } from "./script_worker.ts";

serveWorker(manifest);
