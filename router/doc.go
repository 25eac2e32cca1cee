// Package router fans the raw traffic records out to one Kafka topic per
// catalog metric.
//
// # Delivery
//
// The router consumes hourglass.logs.raw as consumer group hourglass-router.
// For each batch it decodes every record (internal/record), evaluates every
// metric's filter (internal/catalog), and produces the projected record to
// hourglass.metric.<metric>, keyed by tenant (murmur2, as Java clients
// partition). Records that do not decode or validate go to hourglass.logs.dlq
// with their original key and value and the headers reason, error, source and
// stage (internal/dlq owns the message). Only when every
// record of the batch was acknowledged by Kafka (acks=all) are the batch's
// offsets committed. A crash therefore never loses a record; it can repeat
// the last uncommitted batches (at-least-once), which the metric jobs absorb
// because their documents are upserts by deterministic id.
//
// Two batches are in flight at most: while one is produced and then
// committed, the next is fetched and routed (on every CPU: contiguous chunks
// routed in parallel, joined in order). Production and commits happen on one
// goroutine in fetch order, so a commit never passes a batch Kafka has not
// acknowledged.
//
// # Catalog reload
//
// The catalog is reloaded on SIGHUP and when its file changes. A valid new
// catalog takes effect at the next batch, after its new topics exist; an
// invalid one is refused with a logged error and the old one keeps routing.
package router
