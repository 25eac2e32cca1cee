// Package dlq owns the dead-letter contract: what a message in the DLQ topic
// looks like, the one vocabulary of reasons it carries, how a stage that
// refuses a record builds one, and how a reader parses one back. The topic's
// name and shape belong to internal/topology ([topology.DLQTopic]); nobody
// spells the headers or the reasons elsewhere.
//
// # The message
//
// A DLQ message keeps the refused bytes unchanged, so the record can be read,
// fixed and replayed:
//
//	key        the original key: the tenant at ingress, the raw record's key later
//	value      the refused bytes as they were: the line as received at ingress,
//	           the raw record later
//	timestamp  when the record was refused
//	headers    UTF-8 strings, in this order; an optional one is left out when empty:
//	  reason   one [Reason] (always)
//	  error    what was wrong, for people; at most [MaxErrorBytes] (optional)
//	  source   where the refused record was read: <topic>/<partition>/<offset> (optional)
//	  stage    the [Stage] that refused it: ingress, router or indexer (always)
//
// Which stage sends what: ingress sends reason and stage (the line never was
// in Kafka, and the per-record errors went back to the client in the HTTP
// answer); the router sends all four; the indexer sends reason
// (index_rejected), source and stage.
//
// Through Fluentd (ingress --sink fluentd) the message travels as the record
// [Message.FluentdRecord], {tenant, reason, stage, line}, under the DLQ tag;
// the aggregator's kafka2 output turns it into the same Kafka message
// (fluentd/aggregator.conf: message_key_key tenant, headers_from_record for
// reason and stage, the value is line).
//
// # Reasons
//
// A record refused by validation carries the code of its first problem,
// internal/record's [record.Code] unchanged ([RecordReason], [ReasonOf]):
// malformed_json, not_object, invalid_utf8, missing, wrong_type,
// out_of_range, invalid_format, too_long, too_many_fields, tenant_mismatch.
// A stage refusing a record for another cause has its own reason, defined
// here: [ReasonInternal], [ReasonIndexRejected]. Reasons are label values of
// the services' `reason` metrics, so the set stays fixed and small.
//
// # Readers
//
// [Parse] accepts every message the producers above write, ignores headers it
// does not know, and accepts reasons it does not know (a newer producer may
// add one); it refuses a message without reason or stage, or with a
// malformed source.
package dlq
