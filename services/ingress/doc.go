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
//	503 Unavailable     the sink cannot take data now; Retry-After; nothing was accepted
//
// # Durability
//
// A 2xx is sent only after the sink confirmed every accepted record (Kafka:
// acks=all; Fluentd: forward-protocol ack). Rejected records go to the DLQ
// (hourglass.logs.dlq, header `reason`) in the same confirmed write. When the
// sink fails, the request gets 503 and the client retries; a retry may
// duplicate records of a partially written batch, never lose them.
package ingress
