// Package lagmon is the lag monitor (`hourglass lagmon`): for every watched
// consumer group it reports, each poll, the offset lag and the exact time
// lag of every partition, rates and forecasts, a status (OK, UNKNOWN, WARN,
// REWIND, AT_RISK, UNCOMMITTED, STALL, STOP, BREACH, DATA_LOSS), scaling
// advice, and the freshness of every metric in Elasticsearch; it exports
// them to Prometheus, GET /v1/status and a status page, and sends alerts to
// Alertmanager and webhooks.
//
// # Exactness
//
// Each poll reads every group's committed offsets first, then the log start,
// last stable and high watermark offsets of their topics, in that order.
// Each offset only grows, so every read is at least the one before it: lag
// (end − committed, floored at 0) is never negative or inflated by the order
// of the reads, and log start ≤ last stable ≤ end, committed ≤ end hold.
//
// # Never a false OK, never a false zero
//
// A poll reports only what it read. When a read fails (a request error, a
// partition missing from an answer or answered with an error code, a topic
// without a leader) or the reads contradict each other (committed past the
// end, log start past the end), the partition's offsets and lag are unknown
// for that poll: null in /v1/status with a reason (offset_read_error,
// inconsistent_read), no lag series, a count in
// hourglass_lagmon_offset_read_errors_total{kind}, no sample in the ring, and
// the status UNKNOWN on top of what its earlier samples said (status.Unread)
// — never OK, never 0. A group whose lag is unknown on any partition has a
// null lag: a partial sum is not its lag. Every read goes through the small
// brokerReader interface, which the poll tests fake.
//
// # Never committed: UNCOMMITTED
//
// A group that joined but never committed a partition (assigned nothing
// because it joined before its topic existed, or crashing before its first
// commit) has made no progress on the records there. Kafka's own
// kafka-consumer-groups --describe prints "-" for such a partition and
// computes no lag; Burrow learns of groups only from their commits, so it
// does not see such a group at all. Neither says it is healthy, and neither
// says why it is not. Reusing STOP or STALL would be wrong on the first
// poll: those say a consumer that was consuming stopped moving over a window,
// while here nothing was ever committed, which is known at once. So the
// status is its own: UNCOMMITTED, ranked just below STALL. Its lag counts
// the records from the group's start position — Kafka's auto.offset.reset,
// a per-group setting (auto_offset_reset, auto_offset_reset_overrides),
// default earliest because every Hourglass consumer starts there: end − log
// start, and the time lag of the record at the log start. For latest the
// position is unknown (lag null, never_committed) and records arriving while
// the group is watched make it UNCOMMITTED. After a whole window with records
// waiting and still no commit, the partition is also STOP, which outranks it.
// A partition with no records (log start = end) owes nothing: OK, lag 0.
//
// The time lag of a partition is now minus the timestamp of the record a
// READ_COMMITTED consumer at the committed offset (or the start position)
// reads next — CreateTime or LogAppendTime as its batch says (see package
// kafkawire) — and 0 when the position is at or past the last stable offset.
// It is exact on the first poll, needs no history and grows exactly with the
// wall clock while the consumer does not move. The timestamp is fetched once
// per position and cached; when it cannot be read the time lag is null
// (timestamp_read_error) and the status UNKNOWN unless caught up.
//
// # Status rules
//
// The rules are pure functions in package status, documented in
// lag-monitor/README.md.
package lagmon
