/** Why a backup failed, and the error that says it (see `kv_backup.ts`). */
export type BackupErrorCode =
  | "source_missing"
  | "not_sluice_kv"
  | "destination_exists"
  | "destination_dir_missing"
  | "destination_in_use"
  | "disk_full"
  | "copy_failed"
  | "check_failed"
  | "interrupted";

/** A backup that could not be made; nothing is left at the destination. */
export class BackupError extends Error {
  constructor(readonly code: BackupErrorCode, message: string) {
    super(message);
    this.name = "BackupError";
  }
}
