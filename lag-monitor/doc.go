// Package lagmon is the lag monitor (`hourglass lagmon`): for every watched
// consumer group it reports, each poll, the offset lag and the exact time
// lag of every partition, rates and forecasts, a status (OK, UNKNOWN, WARN,
// REWIND, AT_RISK, OPEN_TRANSACTION, UNCOMMITTED, STALL, STOP, BREACH,
// DATA_LOSS), the members and assignments of its group, scaling
// advice, and the freshness of every metric in Elasticsearch; it exports
// them to Prometheus, GET /v1/status and a status page, and sends alerts to
// Alertmanager and webhooks. GET /openapi.json serves the OpenAPI 3 document
// of its HTTP address (openapi.json), /v1/status field by field.
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
// # Transactions: markers are not work, open transactions are the producer's
//
// A consumer that read everything commits after its last data record, so on
// a transactional topic each partition's last commit marker stays after the
// committed offset (Kafka's own tool counts it as lag 1). When the
// READ_COMMITTED fetch from the group's position (the same one that gives
// the time lag) finds no data record before the readable end, only markers
// and aborted records lie there: the partition is caught up (lag 0,
// only_control_records), and the answer is cached per position, so later
// polls fetch only what the last stable offset added. How a group reads is
// configured (isolation_level, default read_committed, per group
// isolation_level_overrides): Kafka does not tell. A read_committed group's
// readable end is the last stable offset (a commit past it shows a group that
// reads uncommitted after all, and its end is the high watermark); the
// records past it belong to open transactions: open_transaction_records,
// and the age of the first of them, read uncommitted and cached per last
// stable offset. Past open_transaction_after that is OPEN_TRANSACTION (below
// UNCOMMITTED): a hung producer blocks every read_committed consumer, and
// blaming the consumer with STALL or STOP would send the SRE to the wrong
// service.
//
// # Groups of any client
//
// DescribeGroups answers members' subscriptions and assignments as opaque
// consumer-protocol bytes; kafka-go decodes only versions 0–1 and drops the
// whole group when a current client (Kafka 2.4+, librdkafka, franz-go) sends
// 1–3. The monitor sends DescribeGroups through kafka-go's transport (which
// routes it to each group's coordinator) and decodes the bytes with package
// kafkawire (versions 0–3; later versions read as 3). A member whose bytes do
// not decode is kept, logged, counted in
// hourglass_lagmon_group_decode_errors_total{kind}, and its group carries the
// error and is UNKNOWN. Groups of the KIP-848 consumer protocol are measured
// from their commits; their members (ConsumerGroupDescribe) are not read.
//
// # Status rules
//
// The rules are pure functions in package status, documented in
// lag-monitor/README.md.
package lagmon
