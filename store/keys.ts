/** The KV key layout, in one place. Every module builds its keys here. */
export const keys = {
  /** One event of a stream. */
  event: (stream: string, seq: number): Deno.KvKey => ["ev", stream, seq],
  eventsOf: (stream: string): Deno.KvKey => ["ev", stream],
  /** Events acked before they reached their streams' keys (single writer): one pack of the inbox. */
  inbox: (pack: number): Deno.KvKey => ["inbox", pack],
  inboxAll: (): Deno.KvKey => ["inbox"],
  /** The inbox's ring of single events, as versions before the packs wrote it (read at recovery). */
  legacyInbox: (slot: number): Deno.KvKey => ["in", slot],
  legacyInboxAll: (): Deno.KvKey => ["in"],
  /** Every inbox entry up to this number has reached its stream. */
  inboxMoved: (): Deno.KvKey => ["in-moved"],
  /** Highest seq of a stream. */
  head: (stream: string): Deno.KvKey => ["head", stream],
  heads: (): Deno.KvKey => ["head"],
  /** Processing cursor of a task stream, or of one consumer of a topic stream. */
  cursor: (stream: string, consumer = "tasks"): Deno.KvKey => ["cur", consumer, stream],
  /** The first seq of a topic a subscriber script runs for, since it was last added (absent: 1). */
  subscribedFrom: (stream: string, consumer: string): Deno.KvKey => ["sub-from", consumer, stream],
  cursors: (consumer = "tasks"): Deno.KvKey => ["cur", consumer],
  /** Every cursor: of each task stream and of each subscriber script of each topic. */
  allCursors: (): Deno.KvKey => ["cur"],
  /** The last message of a channel a broker confirmed, per re-publishing protocol (survives restarts). */
  republished: (protocol: string, channel: string): Deno.KvKey => ["repub", protocol, channel],
  /** Set once a re-publishing protocol kept where every channel it found starts (see `Republisher.init`). */
  republishStarted: (protocol: string): Deno.KvKey => ["repub-started", protocol],
  /** Written by `/healthz` to learn whether KV takes writes again after refusing them. */
  writeProbe: (): Deno.KvKey => ["write-probe"],
  /** The single writer's epoch (one process owns every stream). */
  writer: (): Deno.KvKey => ["writer"],
  /** Latest snapshot of an actor's state. */
  snapshot: (stream: string): Deno.KvKey => ["snap", stream],
  /** The state after the last event trimmed from a log's start (the log starts after it). */
  base: (stream: string): Deno.KvKey => ["snap-base", stream],
  /** Devices, by id and by token hash. */
  device: (id: string): Deno.KvKey => ["dev", id],
  devices: (): Deno.KvKey => ["dev"],
  deviceToken: (hash: string): Deno.KvKey => ["tok", hash],
  /** Bumped on every revocation so other instances drop their caches. */
  revocations: (): Deno.KvKey => ["devrev"],
  /** Hash of the admin token. */
  admin: (): Deno.KvKey => ["admin"],
  channel: (name: string): Deno.KvKey => ["ch", name],
  channels: (): Deno.KvKey => ["ch"],
  /** The ordering of a channel when it was deleted (its queued tasks, partitioned by it, still run). */
  channelGone: (name: string): Deno.KvKey => ["ch-gone", name],
  /** Bumped on every channel change so other instances drop their caches. */
  channelsRevision: (): Deno.KvKey => ["ch-rev"],
  /** Set once the default channels were created: a default channel deleted later stays deleted. */
  channelDefaults: (): Deno.KvKey => ["ch-defaults"],
  /** Message id already seen for a device → where it went. */
  dedup: (sender: string, id: string): Deno.KvKey => ["dedup", sender, id],
  dedups: (): Deno.KvKey => ["dedup"],
  /** A public script's call with an id (`Idempotency-Key`) → its answer. */
  inlineDedup: (sender: string, script: string, id: string): Deno.KvKey => ["dedup-inline", sender, script, id],
  /** Task id → position, for ids not derived from their position. */
  taskIndex: (taskId: string): Deno.KvKey => ["tidx", taskId],
  taskIndexes: (): Deno.KvKey => ["tidx"],
  /** Result of a finished task. */
  taskResult: (taskId: string): Deno.KvKey => ["res", taskId],
  taskResults: (): Deno.KvKey => ["res"],
  /** The failing head-of-line task of a stream and its attempts. */
  retry: (stream: string, consumer = "tasks"): Deno.KvKey => ["retry", consumer, stream],
  /** The ranges of a lane's queue an admin's purge dropped (`PurgedRange[]`, newest last): `GET /tasks/:id` says so. */
  purged: (stream: string, consumer = "tasks"): Deno.KvKey => ["purged", consumer, stream],
  /** The seq a lane resumed after a crash started running, alone, until its outcome lands (see `PartitionRunner`). */
  runMarker: (stream: string, consumer = "tasks"): Deno.KvKey => ["running", consumer, stream],
  runMarkers: (): Deno.KvKey => ["running"],
  /** Written by a graceful stop (one process): the next start knows the last one did not crash. */
  cleanStop: (): Deno.KvKey => ["clean-stop"],
  /** The newest key layout a Sluice wrote this KV with (see `KV_FORMAT`). */
  kvFormat: (): Deno.KvKey => ["kv-format"],
  deadLetter: (taskId: string): Deno.KvKey => ["dead", taskId],
  deadLetters: (): Deno.KvKey => ["dead"],
  /** A dead letter discarded by the admin: off the list, still shown by `GET /tasks/:id`. */
  discarded: (taskId: string): Deno.KvKey => ["dead-gone", taskId],
  discardedAll: (): Deno.KvKey => ["dead-gone"],
  refused: (at: number, n: string): Deno.KvKey => ["refused", at, n],
  refusedAll: (): Deno.KvKey => ["refused"],
  document: (collection: string, id: string): Deno.KvKey => ["doc", collection, id],
  documents: (collection: string): Deno.KvKey => ["doc", collection],
  /** Holder of a partition's lease (multi-instance mode); changes only on takeover. */
  lease: (name: string): Deno.KvKey => ["lease", name],
  /** Expiry of a partition's lease, renewed by its holder. */
  leaseExpiry: (name: string): Deno.KvKey => ["lease-until", name],
} as const;
