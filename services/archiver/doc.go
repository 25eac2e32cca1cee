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
// Invalid records are skipped and counted
// (hourglass_archiver_records_skipped_total{reason="invalid"}): the router
// sends them, unchanged, to the DLQ, which is where they are kept. The
// archive holds exactly the records every consumer accepts.
//
// # Exactly once
//
// After a crash, Kafka redelivers from the last committed offset: records
// that are buffered (lost with the process) and records already in renamed
// files. A part file holds every record of its tenant and hour in its offset
// range, and ranges never overlap, so the archive answers from file names
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
// disk) is retried with exponential backoff up to MaxBackoff, forever; the
// partition's consumption waits meanwhile (hourglass_archiver_paused_partitions)
// and nothing is committed, so nothing is lost. A file whose write failed is
// removed and written again in full from memory.
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
