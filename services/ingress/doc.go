// Package ingress is the HTTP intake of traffic records: POST /v1/logs.
//
// # Request
//
//	POST /v1/logs
//	Authorization: Bearer <api key>
//	Content-Type: application/x-ndjson   (one record per line)   or   application/json (an array of records)
//	Content-Encoding: gzip               (optional)
//
// The tenant of every record is the API key's tenant: a record without
// `tenant` gets it, a record naming another tenant is rejected
// (tenant_mismatch). Records are validated by internal/record.
//
// # Response
//
// A JSON body {"accepted": n, "rejected": m, "errors": [{"index", "field",
// "code", "message"}], "code"?: request-level reason} and one of:
//
//	202 Accepted        every record accepted and durable
//	207 Multi-Status    some accepted and durable, some rejected (listed in errors)
//	422 Unprocessable   every record rejected (listed in errors)
//	400 Bad Request     malformed body (not NDJSON / not a JSON array, bad gzip), empty body
//	401 Unauthorized    missing or unknown API key
//	403 Forbidden       the key is disabled
//	413 Too Large       body, decompressed body, a line, or the record count over its limit
//	415 Unsupported     Content-Type or Content-Encoding not supported
//	429 Too Many        the tenant's rate limit; Retry-After says when to retry
//	503 Unavailable     sink_unavailable: the sink cannot take data now; overloaded: more
//	                    than MaxConcurrent requests, or MaxInflightBytes held; Retry-After;
//	                    nothing was accepted
//
// Per-record codes are internal/record's (malformed_json, not_object,
// invalid_utf8, missing, wrong_type, out_of_range, invalid_format, too_long,
// too_many_fields) plus tenant_mismatch.
//
// # Event time
//
// A record whose timestamp is more than MaxFuture (default 5m) after the
// ingress clock, or more than MaxPast (default 7 days) before it, is rejected
// per record with out_of_range on field timestamp (record.TimeBounds). One
// Spark watermark serves every tenant of a metric: watermark = max event time −
// allowed lateness, so a single record further in the future than the
// lateness would make every tenant's current records late. MaxFuture must stay
// below the catalog's smallest allowed lateness (10m).
//
// # Resource bounds
//
// Checked in this order, everything before the body first:
//
//   - method, API key (headers only);
//   - the tenant's rate limit: admitted while the tenant's token bucket holds
//     at least one token; the records are charged once counted (after
//     decoding) and may take the bucket into debt by up to MaxRecords, which
//     the next requests wait out (429, Retry-After = time until one token is
//     back). Charging by an estimate before reading (Content-Length) was
//     rejected: chunked bodies have none and gzip hides the record count;
//   - MaxConcurrent requests past this point (default 64), else 503 overloaded;
//   - the body, streamed: NDJSON line by line, arrays element by element
//     without decoding the array first, each record decoded as it arrives.
//     A request holds one line buffer (MaxLineBytes) plus, per record, its
//     canonical encoding (accepted) or the line as received (rejected, for the
//     DLQ); all of that is charged to MaxInflightBytes shared by all requests
//     (default 256 MiB), else 503 overloaded. The inflated body itself is never
//     held, so its size (MaxInflatedBytes) bounds CPU, not memory.
//
// # Durability
//
// A 2xx is sent only after the sink confirmed every accepted record (Kafka:
// acks=all; Fluentd: forward-protocol ack). Rejected records go to the DLQ
// (hourglass.logs.dlq, headers reason and stage: internal/dlq) in the same
// confirmed write. When the sink fails, the request gets 503 and the client
// retries; a retry may duplicate records of a partially written batch, never
// lose them.
package ingress
