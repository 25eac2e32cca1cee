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
//	{"_meta":{"records":100,"scanned_bytes":52311,"complete":false,"next_cursor":"eyJ2Ijox...","stopped":"limit"}}
//
// complete is true when every matching record was returned. Otherwise
// stopped says why (limit, scan_limit, deadline, error) and next_cursor,
// passed back as cursor with the same tenant, from, to and filters, resumes
// right after the last record returned. A cursor from another query is
// refused (invalid_cursor).
//
// Filters: status (codes or classes, comma-separated: 404,5xx), method
// (comma-separated, case-insensitive), path_prefix, min_duration_ms,
// request_id (exact), q (plain substring of the raw archived line, at most
// 1 KiB). limit is 1..MaxLimit (default DefaultLimit).
//
// # Auth and audit
//
// Every request carries Authorization: Bearer <token>. Tokens are kept as
// SHA-256 digests in a tokens file (see LoadTokens) and compared in constant
// time; each maps to a name, a role (developer: the listed tenants; admin:
// every tenant). A token asking for a tenant it may not read gets 403
// tenant_forbidden, whether or not the tenant exists, and never a record of
// it: every record returned is checked to belong to the requested tenant.
// Every request, refused or not, is logged with who asked (the token's
// name), the endpoint, the parameters, and what was returned.
//
// # Limits
//
// MaxSpan bounds to-from; MaxScanBytes bounds the compressed bytes one
// request reads (checked per hour before reading it); Deadline bounds its
// time. A request stopped by a limit after some progress ends normally with
// a cursor; one that could make no progress at all gets 422
// scan_limit_exceeded or 504 deadline_exceeded. A client that disconnects
// cancels its scan at once.
//
// Errors are JSON, {"error":{"code":"...","message":"...","parameter":"..."}},
// with codes: missing_token, invalid_token (401), tenant_forbidden (403),
// missing_parameter, invalid_parameter, unknown_parameter, span_too_large,
// invalid_cursor (400), not_found (404), method_not_allowed (405),
// scan_limit_exceeded (422), archive_unavailable (503), deadline_exceeded (504).
package logpeek
