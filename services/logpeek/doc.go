// Package logpeek is the developers' HTTP API over the raw-log archive
// (internal/archive), on HDFS or a local directory alike.
//
// # Endpoints
//
// GET /v1/partitions?tenant=&from=&to= answers JSON: the hours of the
// tenant's archive that start in [from, to) and hold part files, each with
// its file count and compressed bytes:
//
//	{"tenant":"acme","from":...,"to":...,"partitions":[{"start":"2026-01-02T15:00:00Z","dt":"2026-01-02","hour":"15","files":3,"bytes":81234}]}
//
// GET /v1/logs?tenant=&from=&to=&status=&method=&path_prefix=&min_duration_ms=&request_id=&q=&limit=&cursor=
// streams NDJSON (application/x-ndjson): the archived lines (canonical
// records) of the tenant with from <= timestamp < to that pass every filter,
// hour after hour, in event-time order within each hour (ties: part file,
// then line). The last line is always a meta object:
//
//	{"_meta":{"records":100,"bytes":48211,"scanned_bytes":52311,"complete":false,"next_cursor":"eyJ2Ijox...","stopped":"limit"}}
//
// bytes counts the record lines sent, newlines included. complete is true
// when every matching record was returned. Otherwise stopped says why
// (limit, size_limit, scan_limit, deadline, error) and next_cursor, passed
// back as cursor with the same tenant, from, to and filters, resumes right
// after the last record returned.
//
// A cursor is bound to its query (tenant, from, to, filters: another gets
// invalid_cursor), lives CursorTTL (24h) from its issue, and names a
// position inside from-to. It is not a credential and is not signed: the
// token is checked against the tenant on every request, and a hand-made
// cursor can only move the position within records the token may read
// anyway (so replicas need no shared secret).
//
// Filters: status (codes or classes, comma-separated: 404,5xx), method
// (comma-separated, case-insensitive), path_prefix, min_duration_ms,
// request_id (exact), q (plain substring of the raw archived line). limit
// is 1..MaxLimit (default DefaultLimit).
//
// GET /openapi.json serves the OpenAPI 3 document of the API (openapi.json):
// every answer, header and error code, checked against the real answers by
// openapi_test.go.
//
// # Query strings
//
// The query string is parsed strictly (r.URL.Query() would silently drop
// the pairs it cannot parse, turning a filter into no filter):
//
//   - a pair with ';' or a bad percent escape: invalid_query (naming the pair);
//   - a name the endpoint does not take: unknown_parameter;
//   - a name given twice: invalid_parameter;
//   - more than 11 pairs (/v1/logs takes 11 parameters): too_many_parameters;
//   - a value, after decoding, over its bound: parameter_too_long. Bounds:
//     path_prefix 8 KiB, request_id 128 bytes, every other value 1 KiB
//     (q, cursor, tenant...).
//
// The request line and headers together are bounded at 64 KiB (431).
//
// # Auth and audit
//
// Every request carries Authorization: Bearer <token> (the scheme in any
// case). Tokens are kept as SHA-256 digests in a tokens file (the
// format is internal/auth's, shared with the query service) and compared in
// constant time; each maps to a name, a role (customer: its one tenant;
// developer: the listed tenants; admin: every tenant). A token asking for
// a tenant it may not read gets 403 tenant_forbidden, whether or not the
// tenant exists, and never a record of it: every record returned is checked
// to belong to the requested tenant. Authentication comes first: a request
// without a valid token gets 401 whatever its query. Every request, refused
// or not, is logged with who asked (the token's name), the endpoint, the
// parameters, and what was returned.
//
// # Limits
//
// MaxSpan bounds to-from; MaxScanBytes bounds the compressed bytes one
// request reads (checked per hour before reading it); Deadline bounds its
// time. MaxResponseBytes (16 MiB) bounds the record bytes of one answer:
// the scan keeps at most that much (a max-heap by position, never more than
// limit records or MaxResponseBytes bytes, plus the one line being read, at
// most 1 MiB), so a request's memory is bounded whatever the archive holds;
// an answer that reaches it ends with stopped "size_limit" and a cursor. An
// answer of exactly MaxResponseBytes is complete; its first record is sent
// even if it alone is larger. MaxConcurrent (8) requests read the archive at
// once; one more gets 503 overloaded with Retry-After: 2 (parameters and
// tenant are checked first, so a bad request is never "overloaded").
// Worst-case memory is about MaxConcurrent x (MaxResponseBytes + 1 MiB).
//
// A request stopped by a limit after some progress ends normally with a
// cursor; one that could make no progress at all gets 422
// scan_limit_exceeded or 504 deadline_exceeded. A client that disconnects
// cancels its scan at once.
//
// Errors are JSON, {"error":{"code":"...","message":"...","parameter":"..."}},
// with codes: missing_token, invalid_token (401), tenant_forbidden (403),
// missing_parameter, invalid_parameter, unknown_parameter, invalid_query,
// too_many_parameters, parameter_too_long, span_too_large, invalid_cursor
// (400), not_found (404), method_not_allowed (405), scan_limit_exceeded
// (422), archive_unavailable, overloaded (503), deadline_exceeded (504).
package logpeek
