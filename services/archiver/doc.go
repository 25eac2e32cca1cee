// Package archiver writes every raw traffic record to the archive
// (internal/archive: HDFS or a local directory), exactly once.
//
// # Delivery
//
// The archiver consumes hourglass.logs.raw as consumer group
// hourglass-archiver, one goroutine and one Kafka reader per assigned
// partition. Each valid record is appended, in canonical JSON form, to an
// in-memory gzip buffer for its (tenant, event-time hour) — one buffer per
// hour per partition, so a part file holds one partition's records in offset
// order. A buffer becomes a part file when its compressed size reaches
// MaxFileBytes or MaxFileAge after its first record: written under a
// temporary name, closed (durable), renamed to
// part-<partition>-<first>-<last>.jsonl.gz. The partition's offset is then
// committed up to the first offset still buffered in any of its hours, so a
// committed offset never passes a record that is not in a renamed file.
//
// A partition also writes a part file early (a forced flush, counted in
// hourglass_archiver_forced_flushes_total by reason) to stay within its
// memory bounds; see Memory below. Either way the file is written and renamed
// like any other.
//
// Invalid records are skipped and counted
// (hourglass_archiver_records_skipped_total{reason="invalid"}): the router
// sends them, unchanged, to the DLQ, which is where they are kept. The
// archive holds exactly the records every consumer accepts.
//
// # Memory
//
// Input decides how many buffers a partition fills: one per tenant and
// event-time hour among its records. Event-time bounds (ingress and router
// reject records more than 5 minutes ahead or 7 days behind) bound the hours
// of one tenant, not tenants × hours, so two bounds per partition hold by
// themselves:
//
//   - MaxOpenBuckets (--max-open-buckets, default 32): buffers open at once.
//     A record of a further hour first writes the buffer with the oldest
//     first offset (reason="open_buckets").
//   - MaxBufferedBytes (--max-buffered-bytes, default 64 MiB, at least
//     MaxFileBytes): compressed bytes over all open buffers. Past it,
//     buffers are written oldest first offset first until the rest fits
//     (reason="buffered_bytes").
//
// Oldest first because the oldest first offset is what the commit waits
// for: every forced flush lets the committed offset move, so after a crash
// a partition re-reads only what its bounded buffers held (and skips what
// was written ahead of the commit), where it used to re-read from the first
// buffer ever opened and run out of memory again on the same records. Files
// written early are smaller; the exactly-once argument below does not
// depend on file sizes.
//
// Cost of an open buffer: the block of records it fills before handing it to
// a compression worker (at most 32 KiB of dictionary + 256 KiB + one record;
// 4 KiB until it needs more) plus its compressed bytes, in chunks of at most
// 64 KiB that are never copied or regrown (a bytes.Buffer would hold up to
// twice its length). Compression runs in blocks on CompressWorkers
// goroutines shared by the process (--compress-workers, default GOMAXPROCS,
// 1-32; writer.go, "Blocks"): the compressor states (about 0.8 MiB each:
// compress/flate allocates its hash tables and window whole) are one per
// worker, no longer one per open buffer, and a partition has at most
// 2 × CompressWorkers + 1 blocks in flight. One partition therefore holds
// at most about
//
//	MaxBufferedBytes + MaxOpenBuckets × (288 KiB + 64 KiB) + (2 × CompressWorkers + 1) × 2 × 288 KiB
//
// = 64 MiB + 11 MiB + 3 MiB ≈ 78 MiB with the defaults on 2 cores, plus
// CompressWorkers × 0.8 MiB per process (tested: 32 open buffers take
// 0.2 MiB of heap beside their compressed bytes; 1 000 records a day apart,
// each its own hour, peak 0.4 MiB; after the final flush nothing stays).
// The defaults: 32 buffers cover a partition's tenants around an hour
// boundary plus some late records without forced flushes; 64 MiB is
// MaxFileBytes, so one busy hour still rolls by size. A process holds
// this per assigned partition, plus up to 16 MiB per partition of Kafka
// fetch buffer: size the memory limit as partitions × about 95 MiB at
// the defaults, or lower the two bounds (and MaxFileBytes) to fit.
//
// # Exactly once
//
// After a crash, Kafka redelivers from the last committed offset: records
// that are buffered (lost with the process) and records already in renamed
// files. A part file holds every record of its tenant and hour in its offset
// range, and ranges never overlap (the files of one hour, rolled by size,
// age or a forced flush, hold disjoint, increasing ranges), so the archive answers from file names
// alone whether a redelivered record is there: the first time the writer of
// a partition meets an hour it lists that hour's directory, keeps the
// offset ranges of the partition's part files, and deletes the partition's
// leftover temporary files. A redelivered record whose offset lies in a
// range is skipped; any other is archived. A crash at any point — while
// writing, between close and rename, between rename and commit — leaves
// neither a gap nor a duplicate.
//
// A rename whose answer was lost (NameNode restart) is recognised by the
// temporary file being gone and the final one being there.
//
// # Unavailable archive
//
// Every archive operation that fails (NameNode or DataNode down, a full
// disk) is retried with exponential backoff (internal/retry) up to
// MaxBackoff, forever; the partition's consumption waits meanwhile
// (hourglass_archiver_paused_partitions) and nothing is committed, so
// nothing is lost. A file whose write failed is removed and written again
// in full from memory.
//
// # Rebalances and shutdown
//
// When a rebalance ends the generation, each partition drops its buffers
// uncommitted and stops before this member rejoins the group (the Kafka
// consumer group protocol waits for it), so the partition's next owner
// starts from the committed offset and reconciles with the files already
// renamed. On SIGTERM, each partition stops consuming, writes and renames
// every buffer and commits (within DrainTimeout; what is not durable by then
// stays uncommitted and is archived after the restart).
//
// Residual risk: a member stalled (e.g. in an HDFS call) for longer than the
// session timeout is expelled while it may still rename a file; the new
// owner could then write an overlapping range. The I/O timeout of the HDFS
// client (20s by default) bounds such a stall; keep SessionTimeout above it
// in production.
package archiver
