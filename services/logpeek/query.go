package logpeek

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Error codes of the API (the "code" of every error answer).
const (
	CodeMissingToken       = "missing_token"
	CodeInvalidToken       = "invalid_token"
	CodeTenantForbidden    = "tenant_forbidden"
	CodeMissingParameter   = "missing_parameter"
	CodeInvalidParameter   = "invalid_parameter"
	CodeUnknownParameter   = "unknown_parameter"
	CodeSpanTooLarge       = "span_too_large"
	CodeInvalidCursor      = "invalid_cursor"
	CodeScanLimitExceeded  = "scan_limit_exceeded"
	CodeDeadlineExceeded   = "deadline_exceeded"
	CodeArchiveUnavailable = "archive_unavailable"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeInvalidQuery       = "invalid_query"
	CodeTooManyParameters  = "too_many_parameters"
	CodeParameterTooLong   = "parameter_too_long"
	CodeOverloaded         = "overloaded"
)

// apiError is an error answer: {"error": {"code": ..., "message": ..., "parameter": ...}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"parameter,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badParam(param, code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Param: param, Message: fmt.Sprintf(format, args...)}
}

// span is the tenant and time range every endpoint takes.
type span struct {
	tenant   string
	from, to time.Time
}

// logsQuery is a parsed GET /v1/logs request.
type logsQuery struct {
	span
	statuses    []statusMatch
	methods     []string
	pathPrefix  string
	minDuration float64 // -1: no filter
	requestID   string
	q           []byte
	limit       int
	cursor      *cursor
}

// statusMatch is one status value: an exact code or a class (5xx).
type statusMatch struct {
	code  int
	class bool
}

var (
	partitionsParams = []string{"tenant", "from", "to"}
	logsParams       = []string{"tenant", "from", "to", "status", "method", "path_prefix", "min_duration_ms", "request_id", "q", "limit", "cursor"}
)

// Bounds of a query string. maxParams is the number of distinct parameters
// of /v1/logs: a query with more pairs repeats or invents one.
const (
	maxParams   = 11
	maxValueLen = 1 << 10 // every value not listed in valueLimit
)

// valueLimit is the longest value, in bytes after percent-decoding, of the
// parameters whose bound is not maxValueLen.
var valueLimit = map[string]int{
	"path_prefix": record.MaxPathLen,
	"request_id":  record.MaxRequestIDLen,
}

func limitOf(name string) int {
	if n, ok := valueLimit[name]; ok {
		return n
	}
	return maxValueLen
}

// quoteTrunc quotes s for an error message, cut to 64 bytes.
func quoteTrunc(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}

// parseQuery parses a raw query string strictly: unlike url.ParseQuery as
// net/http uses it (r.URL.Query() drops the pairs it cannot parse), every
// pair must decode, be one of allowed, appear once and fit its bound. The
// first problem, in the order of the pairs, is the answer.
func parseQuery(raw string, allowed []string) (url.Values, *apiError) {
	v := url.Values{}
	n := 0
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		if n++; n > maxParams {
			return nil, &apiError{Status: http.StatusBadRequest, Code: CodeTooManyParameters,
				Message: fmt.Sprintf("more than %d query parameters", maxParams)}
		}
		if strings.Contains(pair, ";") {
			return nil, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidQuery,
				Message: fmt.Sprintf("query pair %s contains ';': separate pairs with '&' and percent-encode ';' as %%3B", quoteTrunc(pair))}
		}
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(rawKey)
		if err != nil {
			return nil, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidQuery,
				Message: fmt.Sprintf("query pair %s: the name is not percent-encoded correctly", quoteTrunc(pair))}
		}
		if !slices.Contains(allowed, k) {
			return nil, badParam(truncate(k, 64), CodeUnknownParameter, "unknown parameter %s; known: %s", quoteTrunc(k), strings.Join(allowed, ", "))
		}
		if v.Has(k) {
			return nil, badParam(k, CodeInvalidParameter, "%s given more than once; give it once (lists are comma-separated)", k)
		}
		limit := limitOf(k)
		if len(rawValue) > 3*limit { // cannot decode to limit bytes or less
			return nil, badParam(k, CodeParameterTooLong, "%s is at most %d bytes", k, limit)
		}
		val, err := url.QueryUnescape(rawValue)
		if err != nil {
			return nil, &apiError{Status: http.StatusBadRequest, Code: CodeInvalidQuery, Param: k,
				Message: fmt.Sprintf("query pair %s: the value is not percent-encoded correctly", quoteTrunc(pair))}
		}
		if len(val) > limit {
			return nil, badParam(k, CodeParameterTooLong, "%s is at most %d bytes", k, limit)
		}
		v.Set(k, val)
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseSpan reads tenant, from and to from a query parsed by parseQuery.
func parseSpan(v url.Values, maxSpan time.Duration) (span, *apiError) {
	var s span
	s.tenant = v.Get("tenant")
	if s.tenant == "" {
		return s, badParam("tenant", CodeMissingParameter, "tenant is required")
	}
	if !record.ValidTenant(s.tenant) {
		return s, badParam("tenant", CodeInvalidParameter, "tenant must match [a-z0-9-]{1,63}")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &s.from}, {"to", &s.to}} {
		raw := v.Get(p.name)
		if raw == "" {
			return s, badParam(p.name, CodeMissingParameter, "%s is required (RFC 3339, e.g. 2026-01-02T15:00:00Z)", p.name)
		}
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			return s, badParam(p.name, CodeInvalidParameter, "%s must be an RFC 3339 time, e.g. 2026-01-02T15:00:00Z", p.name)
		}
		*p.dst = t.UTC()
	}
	if !s.from.Before(s.to) {
		return s, badParam("to", CodeInvalidParameter, "to must be after from")
	}
	if s.to.Sub(s.from) > maxSpan {
		return s, badParam("to", CodeSpanTooLarge, "the time span %s exceeds the maximum of %s; narrow from/to", s.to.Sub(s.from), maxSpan)
	}
	return s, nil
}

// parseLogs reads and validates every parameter of GET /v1/logs.
func parseLogs(v url.Values, cfg Config, now time.Time) (*logsQuery, *apiError) {
	s, aerr := parseSpan(v, cfg.MaxSpan)
	if aerr != nil {
		return nil, aerr
	}
	q := &logsQuery{span: s, minDuration: -1, limit: cfg.DefaultLimit}
	if raw := v.Get("status"); raw != "" {
		for _, e := range strings.Split(raw, ",") {
			e = strings.TrimSpace(e)
			if len(e) == 3 && e[0] >= '1' && e[0] <= '5' && strings.EqualFold(e[1:], "xx") {
				q.statuses = append(q.statuses, statusMatch{code: int(e[0]-'0') * 100, class: true})
				continue
			}
			n, err := strconv.Atoi(e)
			if err != nil || n < 100 || n > 599 {
				return nil, badParam("status", CodeInvalidParameter, "status %q: want codes 100-599 or classes like 5xx, comma-separated", e)
			}
			q.statuses = append(q.statuses, statusMatch{code: n})
		}
	}
	if raw := v.Get("method"); raw != "" {
		for _, e := range strings.Split(raw, ",") {
			e = strings.ToUpper(strings.TrimSpace(e))
			if e == "" || len(e) > record.MaxMethodLen || strings.ContainsAny(e, " \t\"(),/:;<=>?@[\\]{}") {
				return nil, badParam("method", CodeInvalidParameter, "method %q: want HTTP methods, comma-separated", e)
			}
			q.methods = append(q.methods, e)
		}
	}
	if raw := v.Get("path_prefix"); raw != "" {
		if raw[0] != '/' {
			return nil, badParam("path_prefix", CodeInvalidParameter, "path_prefix must start with '/'")
		}
		q.pathPrefix = raw
	}
	if raw := v.Get("min_duration_ms"); raw != "" {
		d, err := strconv.ParseFloat(raw, 64)
		if err != nil || d < 0 || math.IsInf(d, 0) || math.IsNaN(d) {
			return nil, badParam("min_duration_ms", CodeInvalidParameter, "min_duration_ms must be a number >= 0")
		}
		q.minDuration = d
	}
	if raw := v.Get("request_id"); raw != "" {
		q.requestID = raw // at most record.MaxRequestIDLen bytes (parseQuery)
	}
	if raw := v.Get("q"); raw != "" {
		q.q = []byte(raw) // at most maxValueLen bytes (parseQuery)
	}
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > cfg.MaxLimit {
			return nil, badParam("limit", CodeInvalidParameter, "limit must be an integer 1-%d", cfg.MaxLimit)
		}
		q.limit = n
	}
	if raw := v.Get("cursor"); raw != "" {
		c, err := decodeCursor(raw)
		if err == nil {
			err = q.checkCursor(c, cfg.CursorTTL, now)
		}
		if err != nil {
			return nil, badParam("cursor", CodeInvalidCursor, "%s", err)
		}
		q.cursor = &c
	}
	return q, nil
}

// fingerprint identifies the query's tenant, range and filters (not limit
// or cursor), so a cursor is only accepted by the query it came from.
func (q *logsQuery) fingerprint() uint64 {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%v\x00%v\x00%s\x00%g\x00%s\x00%s",
		q.tenant, q.from.UnixNano(), q.to.UnixNano(), q.statuses, q.methods, q.pathPrefix, q.minDuration, q.requestID, q.q)
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// cacheID identifies the query's tenant, range and filters like
// fingerprint, but whole (SHA-256) and over an unambiguous encoding (every
// value length-prefixed): the page cache is keyed by it, and two queries
// with the same cacheID are the same query.
func (q *logsQuery) cacheID() [32]byte {
	var b []byte
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	num := func(n int64) { b = binary.AppendVarint(b, n) }
	str(q.tenant)
	num(q.from.UnixNano())
	num(q.to.UnixNano())
	num(int64(len(q.statuses)))
	for _, st := range q.statuses {
		num(int64(st.code))
		if st.class {
			num(1)
		} else {
			num(0)
		}
	}
	num(int64(len(q.methods)))
	for _, m := range q.methods {
		str(m)
	}
	str(q.pathPrefix)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(q.minDuration))
	str(q.requestID)
	str(string(q.q))
	return sha256.Sum256(b)
}

// fieldFilters reports whether the query filters on fields other than the
// time range and tenant (the q text is matched on the raw line).
func (q *logsQuery) fieldFilters() bool {
	return len(q.statuses) > 0 || len(q.methods) > 0 || q.pathPrefix != "" || q.minDuration >= 0 || q.requestID != ""
}

// match applies the filters to a record whose raw line is line.
func (q *logsQuery) match(r *record.Record, line []byte) bool {
	if r.Timestamp.Before(q.from) || !r.Timestamp.Before(q.to) || r.Tenant != q.tenant {
		return false
	}
	if len(q.statuses) > 0 && !slices.ContainsFunc(q.statuses, func(s statusMatch) bool {
		if s.class {
			return r.Status/100*100 == s.code
		}
		return r.Status == s.code
	}) {
		return false
	}
	if len(q.methods) > 0 && !slices.Contains(q.methods, r.Method) {
		return false
	}
	if q.pathPrefix != "" && !strings.HasPrefix(r.Path, q.pathPrefix) {
		return false
	}
	if q.minDuration >= 0 && r.DurationMS < q.minDuration {
		return false
	}
	if q.requestID != "" && r.RequestID != q.requestID {
		return false
	}
	if len(q.q) > 0 && !bytes.Contains(line, q.q) {
		return false
	}
	return true
}

// key orders records: hour, then event time, then file, then line. It is
// total and stable across requests, so a cursor names a place in it.
type key struct {
	Hour int64  `json:"h"` // unix seconds of the hour
	TS   int64  `json:"t"` // unix nanoseconds of the record; math.MinInt64: before the hour's first record
	File string `json:"f"`
	Line int    `json:"l"`
}

func (a key) compare(b key) int {
	switch {
	case a.Hour != b.Hour:
		return cmpInt(a.Hour, b.Hour)
	case a.TS != b.TS:
		return cmpInt(a.TS, b.TS)
	case a.File != b.File:
		return strings.Compare(a.File, b.File)
	default:
		return cmpInt(int64(a.Line), int64(b.Line))
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cursor is where a continued query resumes: after Key. It is not a
// credential: the token is checked against the tenant on every request, and
// a cursor only moves the position within the query it was issued for.
type cursor struct {
	V      int    `json:"v"`
	Query  uint64 `json:"q"` // fingerprint of the query
	Key    key    `json:"k"`
	Issued int64  `json:"i"` // unix seconds
}

const (
	cursorVersion = 2
	// cursorSkew is how far in the future a cursor's issue time may be
	// (clocks of replicas differ).
	cursorSkew = 5 * time.Minute
)

// startOfHour is a key before every record of hour h.
func startOfHour(h time.Time) key { return key{Hour: h.Unix(), TS: math.MinInt64} }

func encodeCursor(q *logsQuery, k key, issued time.Time) string {
	b, _ := json.Marshal(cursor{V: cursorVersion, Query: q.fingerprint(), Key: k, Issued: issued.Unix()})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, errors.New("cursor is malformed: not base64url")
	}
	var c cursor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.More() {
		return cursor{}, errors.New("cursor is malformed: not a cursor object")
	}
	if c.V != cursorVersion {
		return cursor{}, fmt.Errorf("cursor version %d is not supported (this server issues version %d); repeat the query without it", c.V, cursorVersion)
	}
	if c.Key.Hour%3600 != 0 || c.Key.Line < 0 {
		return cursor{}, errors.New("cursor is malformed: bad position")
	}
	return c, nil
}

// checkCursor accepts a cursor issued for this very query (tenant, range,
// filters), within ttl of now, whose position lies in the query's range.
func (q *logsQuery) checkCursor(c cursor, ttl time.Duration, now time.Time) error {
	if c.Query != q.fingerprint() {
		return errors.New("cursor belongs to a query with other parameters; repeat the query's tenant, from, to and filters with it")
	}
	issued := time.Unix(c.Issued, 0)
	if issued.After(now.Add(cursorSkew)) {
		return errors.New("cursor is malformed: issued in the future")
	}
	if now.Sub(issued) > ttl {
		return fmt.Errorf("cursor expired: issued %s ago, cursors live %s; repeat the query without it", now.Sub(issued).Truncate(time.Second), ttl)
	}
	if first := q.from.Truncate(time.Hour).Unix(); c.Key.Hour < first || c.Key.Hour >= q.to.Unix() {
		return errors.New("cursor is malformed: its position is outside from-to")
	}
	return nil
}
