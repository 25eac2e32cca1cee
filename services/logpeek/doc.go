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
// bytes counts the record lines sent, newlines included. scanned_bytes is
// the compressed size of the part files of the hours the answer covered,
// whether read for it or served from the page cache (below) by an earlier
// page's read. complete is true when every matching record was returned. Otherwise stopped says why
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
// request scans (its scanned_bytes: checked per hour before reading it, an
// hour served from the page cache counted as read); Deadline bounds its
// time. MaxResponseBytes (16 MiB) bounds the record bytes of one answer; an
// answer that reaches it ends with stopped "size_limit" and a cursor. An
// answer of exactly MaxResponseBytes is complete; its first record is sent
// even if it alone is larger. The scan of an hour keeps the first records
// after the position in a max-heap by position, never more than
// MaxResponseBytes bytes (and limit records) without the page cache, and
// than the larger of MaxResponseBytes and the entry cap (below) with it.
// It reads up to W = min(GOMAXPROCS, 4) of the hour's part files at once,
// each reader holding a gzip reader, the line being read and its copy (at
// most 1 MiB each) and a 64 KiB batch of records for the heap; the answer
// is the same as reading them one after the other (the same records, and
// on a failure the first bad file's error and the bytes up to it). So a
// request's memory is bounded whatever the archive holds. MaxConcurrent (8)
// requests read the archive at once; one more gets 503 overloaded with
// Retry-After: 2 (parameters and tenant are checked first, so a bad request
// is never "overloaded").
// Worst-case memory is about MaxConcurrent x (max(MaxResponseBytes, entry
// cap) + W x 2 MiB) + PageCacheBytes, plus ~64 bytes per record held: 8 x
// (32 + 8) MiB + 256 MiB, ~580 MiB, by default (8 x (16 + 8) MiB without
// the cache).
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
//
// # Page cache
//
// A page that stops inside an hour (by limit or size_limit) has read all of
// that hour's part files. The page cache keeps the hour's matching records
// after the page, in order, so that the next page of the query resumes from
// memory: an hour of P pages is read about once instead of P times. An
// entry belongs to one query (tenant, from, to and filters: a SHA-256 of
// them) and one hour, and to the hour's part files as listed when it was
// filled (names and sizes). The hour is listed on every page: a new or
// changed part file makes the entry miss. An entry serves a cursor inside
// the span of records it holds every record of; a cursor outside it, or a
// page that would go past its end, reads the hour again as it would without
// the cache (and fills a new entry). Answers are the same, byte for byte,
// with the cache or without: records, order, cursors and meta; a page
// served from the cache counts the hour's compressed bytes in
// scanned_bytes, and against MaxScanBytes, as the page that read them did.
// hourglass_logpeek_scanned_bytes_total counts the bytes actually read.
//
// The token is checked against the tenant before the cache is looked at,
// and an entry is only ever served to its own query of its own tenant. One
// tenant's entries can evict another's (a cost in speed, never in what is
// returned), and one tenant holds at most half of the cache.
//
// Bounds: PageCacheBytes (256 MiB; 0 disables the cache) over all entries,
// each charged its record bytes plus ~64 bytes a record; an entry holds at
// most min(PageCacheBytes/8, 4 x MaxResponseBytes) (32 MiB by default; the
// scan of an hour keeps that much, and an hour with more is read again
// whenever the pages reach the end of its entry); the least recently used
// entry is evicted to make room, a tenant's own first when it is over half;
// an entry unused for 10 minutes is dropped at the next use of the cache.
// A page served from an entry leaves an entry of what is left after it.
// The cache is the process's: a page answered by another replica reads the
// hour. Metrics: hourglass_logpeek_page_cache_hits_total and _misses_total
// (hours served from the cache, hours read with it on),
// _evictions_total{reason} (budget, tenant_share, ttl, stale), _bytes and
// _entries.
package logpeek
