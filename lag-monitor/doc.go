// Package lagmon is the lag monitor (`hourglass lagmon`): for every watched
// consumer group it reports, each poll, the offset lag and the exact time
// lag of every partition, rates and forecasts, a status (OK, WARN, STALL,
// STOP, REWIND, DATA_LOSS, AT_RISK, BREACH), scaling advice, and the
// freshness of every metric in Elasticsearch; it exports them to Prometheus,
// GET /v1/status and a status page, and sends alerts to Alertmanager and
// webhooks.
//
// # Exactness
//
// Each poll reads every group's committed offsets first, then the log start,
// high watermark and last stable offsets of their topics. End offsets only
// grow, so the lag (end − committed, floored at 0) is never negative or
// inflated by the order of the reads. A partition the group never committed
// has lag "unknown" (Count.Known false), not 0 or −1.
//
// The time lag of a partition is now minus the timestamp of the record a
// READ_COMMITTED consumer at the committed offset reads next — CreateTime or
// LogAppendTime as its batch says (see package kafkawire) — and 0 when the
// committed offset is at or past the last stable offset. It is exact on the
// first poll, needs no history and grows exactly with the wall clock while
// the consumer does not move. The timestamp is fetched once per committed
// offset and cached.
//
// # Status rules
//
// The rules are pure functions in package status, documented in
// lag-monitor/README.md.
package lagmon
