package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one traffic record. Optional numeric fields that may be absent
// (rather than zero) are pointers; see [Fields] for the meaning of each.
type Record struct {
	Timestamp  time.Time `json:"timestamp"`
	Tenant     string    `json:"tenant"`
	RequestID  string    `json:"request_id,omitempty"`
	Method     string    `json:"method"`
	Scheme     string    `json:"scheme,omitempty"`
	Host       string    `json:"host,omitempty"`
	Path       string    `json:"path,omitempty"`
	Status     int       `json:"status"`
	BytesIn    int64     `json:"bytes_in"`
	BytesOut   int64     `json:"bytes_out"`
	DurationMS float64   `json:"duration_ms"`
	RTTMS      *float64  `json:"rtt_ms,omitempty"`
	UpstreamMS *float64  `json:"upstream_ms,omitempty"`
	ClientIP   string    `json:"client_ip,omitempty"`
	UserAgent  string    `json:"user_agent,omitempty"`
	Edge       string    `json:"edge,omitempty"`
	Protocol   string    `json:"protocol,omitempty"`
}

// Limits of the string fields, in bytes.
const (
	MaxTenantLen    = 63
	MaxRequestIDLen = 128
	MaxMethodLen    = 32
	MaxHostLen      = 255
	MaxPathLen      = 8 << 10
	MaxUserAgentLen = 1 << 10
	MaxEdgeLen      = 64
	MaxProtocolLen  = 16
)

// Numeric ranges. They keep every aggregate the catalog can ask for finite and
// exact (issue 12: an avg over rtt_ms = 1.79e308 became Infinity, which
// Elasticsearch refuses, and sum(bytes_out) over 2^63-1 overflowed under
// Spark's ANSI mode, failing the job on every replay).
//
//   - MaxMillis (duration_ms, rtt_ms, upstream_ms): one day in milliseconds,
//     86 400 000 < 2^27. No request or round trip lasts longer. A sum of
//     MaxSummedRecords such values stays below 2^50, well inside the 2^53 up to
//     which a double holds every integer: sums and averages of whole
//     milliseconds are exact, and of fractional ones off by at most one ulp per
//     addition — never Infinity.
//   - MaxBytes (bytes_in, bytes_out): 1 TiB = 2^40 bytes, above any single
//     HTTP request or response. A sum of at most MaxSummedRecords values is at
//     most (2^23−1)·2^40 = 2^63 − 2^40, inside a signed 64-bit integer (Spark
//     bigint, Elasticsearch long). A sum over more records (a 1h window of a
//     tenant sending more than 2 330 records/s, all of them 1 TiB) is only
//     safe in a double or a decimal: the Spark job must not sum bytes as bigint
//     over windows that can hold more than MaxSummedRecords records.
//   - MaxSummedRecords: 2^23 − 1 = 8 388 607 records per window and group.
const (
	MaxMillis        = 86_400_000
	MaxBytes         = 1 << 40
	MaxSummedRecords = 1<<23 - 1
)

// MaxUnknownFields is the most distinct unknown keys a record may carry; more
// make the record invalid ([CodeTooManyFields]). Unknown keys are dropped and
// counted, so the bound costs honest senders nothing and keeps the work and
// memory a hostile record causes in proportion to the fields we keep.
const MaxUnknownFields = 64

// TenantPattern is ValidTenant as a regular expression, for the documents
// that cannot call Go (the OpenAPI documents, the chart's values schema);
// TestTenantPatternCopies holds their copies to it.
const TenantPattern = "^[a-z0-9-]{1,63}$"

// ValidTenant reports whether s is a tenant name: 1 to MaxTenantLen (63)
// bytes, each a lower-case ASCII letter, a digit or '-' (TenantPattern). This package owns the rule: the record's
// tenant field, API keys and tokens, archive tenant=<t> directories, and the
// Elasticsearch aliases, roles and Kibana spaces named after a tenant all
// check names with it.
func ValidTenant(s string) bool {
	if len(s) == 0 || len(s) > MaxTenantLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Code is a machine-readable reason why a record or one of its fields was
// rejected. Codes are part of the API: ingress responses carry them, and so
// does the DLQ's `reason` header (internal/dlq, whose record-level reasons
// they are).
type Code string

const (
	CodeMalformedJSON Code = "malformed_json"  // not parseable as JSON
	CodeNotObject     Code = "not_object"      // JSON, but not an object
	CodeInvalidUTF8   Code = "invalid_utf8"    // a string holds bytes that are not UTF-8
	CodeMissing       Code = "missing"         // a required field is absent or null
	CodeWrongType     Code = "wrong_type"      // e.g. a string where a number belongs
	CodeOutOfRange    Code = "out_of_range"    // a number outside its range, or not finite
	CodeInvalidFormat Code = "invalid_format"  // e.g. a malformed timestamp, tenant or IP
	CodeTooLong       Code = "too_long"        // a string over its length limit
	CodeTooManyFields Code = "too_many_fields" // more than MaxUnknownFields distinct unknown keys (a record-level problem)
	// CodeTenantMismatch is never returned by Decode: ingress reports it for a
	// record naming another tenant than its API key's (field tenant).
	CodeTenantMismatch Code = "tenant_mismatch"
)

// Problem is one reason a record is invalid. Field is empty for problems of
// the record as a whole (malformed JSON, not an object).
type Problem struct {
	Field   string `json:"field,omitempty"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return fmt.Sprintf("%s: %s", p.Code, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.Field, p.Code, p.Message)
}

// InvalidError is returned for a record with problems; it lists all of them.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid record: " + strings.Join(parts, "; ")
}

// Reason is the code of the first problem: the single value a DLQ record's
// `reason` header carries.
func (e *InvalidError) Reason() Code {
	if len(e.Problems) == 0 {
		return ""
	}
	return e.Problems[0].Code
}

// Decode parses one JSON object into a record and validates it. It returns the
// names of unknown keys (dropped) and, when the record is invalid, an
// *InvalidError listing every problem found. Decode never panics. The
// record's strings share one copy of the known fields' values (not data):
// holding any of them holds that copy.
func Decode(data []byte) (Record, []string, error) {
	return decode(data, true)
}

// DecodeCanonical is Decode for a value marked with CanonicalHeader: every
// check of every field, without first proving that the bytes are
// well-formed JSON (AppendJSON wrote them; that proof is a third of
// Decode's work). A marked value that is not well-formed — a producer
// breaking the mark's promise — is decoded by Decode instead of panicking.
func DecodeCanonical(data []byte) (rec Record, unknown []string, err error) {
	defer func() {
		if recover() != nil {
			rec, unknown, err = Decode(data)
		}
	}()
	return decode(data, false)
}

// decode decodes data; validJSON false skips the well-formedness pass
// (the member scanner then relies on the producer).
func decode(data []byte, validJSON bool) (Record, []string, error) {
	var rec Record
	trimmed := bytes.TrimSpace(data)
	if validJSON && !json.Valid(trimmed) {
		var raw json.RawMessage
		msg := "not valid JSON"
		if err := json.Unmarshal(trimmed, &raw); err != nil {
			msg = err.Error()
		}
		return rec, nil, invalid(Problem{Code: CodeMalformedJSON, Message: msg})
	}
	if trimmed[0] != '{' {
		return rec, nil, invalid(Problem{Code: CodeNotObject, Message: "a record must be a JSON object"})
	}

	// The last value of each known key wins, as with any JSON object decoder.
	// Unknown keys are collected in a set (O(1) per key) of at most
	// MaxUnknownFields+1 names: past that the record is invalid anyway.
	var values [len(fields)]struct{ start, end int } // end 0: absent
	var unknown []string
	var seen map[string]struct{}
	next := 0                     // the field canonical order puts next: most records come so
	utf8OK := utf8.Valid(trimmed) // one pass for every key and string of the value
	eachMember(trimmed, utf8OK, func(key []byte, start, end int) {
		i, known := next, next < len(fields) && string(key) == fields[next].Name
		if !known {
			i, known = fieldIndex[string(key)]
		}
		if known {
			values[i].start, values[i].end = start, end
			next = i + 1
			return
		}
		if len(unknown) > MaxUnknownFields {
			return
		}
		if seen == nil {
			seen = make(map[string]struct{})
		}
		if _, dup := seen[string(key)]; !dup {
			k := string(key)
			seen[k] = struct{}{}
			unknown = append(unknown, k)
		}
	})

	// The record's strings are substrings of one string holding the known
	// fields' string values: one allocation instead of one per field, and
	// nothing of the unknown fields kept.
	var src strings.Builder
	var offset [len(fields)]int
	size := 0
	for _, v := range values {
		if v.end != 0 && trimmed[v.start] == '"' {
			size += v.end - v.start
		}
	}
	src.Grow(size)
	for i, v := range values {
		offset[i] = -1
		if v.end != 0 && trimmed[v.start] == '"' {
			offset[i] = src.Len()
			src.Write(trimmed[v.start:v.end])
		}
	}
	d := decoder{rec: &rec, src: src.String(), utf8OK: utf8OK}
	if len(unknown) > MaxUnknownFields {
		unknown = unknown[:MaxUnknownFields]
		d.problems = append(d.problems, tooManyFields())
	}
	for i, v := range values {
		if v.end != 0 {
			d.field(i, trimmed[v.start:v.end], offset[i])
		}
	}
	d.missing()
	d.problems = append(d.problems, rec.check(d.bad, true)...)
	sortProblems(d.problems)
	slices.Sort(unknown)
	if len(d.problems) > 0 {
		return rec, unknown, &InvalidError{Problems: d.problems}
	}
	return rec, unknown, nil
}

// Validate checks a record built in Go (not decoded) against the same rules as
// [Decode]: a zero value of a required field counts as missing, except
// duration_ms, where 0 is a valid value.
func (r *Record) Validate() error {
	if ps := r.check(0, false); len(ps) > 0 {
		sortProblems(ps)
		return &InvalidError{Problems: ps}
	}
	return nil
}

// MarshalJSON encodes the record in canonical form: timestamp in UTC,
// optional fields omitted when absent.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record // no MarshalJSON method: avoids recursion
	p := plain(r)
	p.Timestamp = p.Timestamp.UTC()
	return json.Marshal(p)
}

func invalid(p Problem) error { return &InvalidError{Problems: []Problem{p}} }

func tooManyFields() Problem {
	return Problem{Code: CodeTooManyFields, Message: fmt.Sprintf("more than %d unknown keys", MaxUnknownFields)}
}

// decoder fills a Record from raw JSON values, noting type problems per field.
type decoder struct {
	rec      *Record
	src      string // the values of string fields, when field is given offsets into it
	utf8OK   bool   // all of the decoded value is UTF-8
	problems []Problem
	bad      fieldSet // fields with a problem already: value checks skip them
	present  fieldSet
}

// fieldSet is a set of record fields, by their index in fields.
type fieldSet uint32

func (s fieldSet) has(i int) bool { return s&(1<<i) != 0 }
func (s *fieldSet) add(i int)     { *s |= 1 << i }

func (d *decoder) add(field string, code Code, msg string) {
	d.problems = append(d.problems, Problem{Field: field, Code: code, Message: msg})
	d.bad.add(fieldIndex[field])
}

// missing reports each required field neither present nor wrong already.
func (d *decoder) missing() {
	for i, f := range fields[:] {
		if f.Required && !d.bad.has(i) && !d.present.has(i) {
			d.add(f.Name, CodeMissing, "required field is missing")
		}
	}
}

// field decodes the value of fields[i]: raw, also at offset off of d.src (or
// -1 when it is not there).
func (d *decoder) field(i int, raw json.RawMessage, off int) {
	r := d.rec
	if string(raw) == "null" {
		return // absent; a required field is then reported missing
	}
	d.present.add(i)
	switch key := fields[i].Name; key {
	case FieldTimestamp:
		if s, ok := d.str(key, raw, off); ok {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				d.add(key, CodeInvalidFormat, "must be an RFC 3339 timestamp, e.g. 2026-01-02T15:04:05.123Z")
			} else {
				r.Timestamp = t.UTC()
			}
		}
	case FieldTenant:
		r.Tenant, _ = d.str(key, raw, off)
	case FieldRequestID:
		r.RequestID, _ = d.str(key, raw, off)
	case FieldMethod:
		r.Method, _ = d.str(key, raw, off)
	case FieldScheme:
		r.Scheme, _ = d.str(key, raw, off)
	case FieldHost:
		r.Host, _ = d.str(key, raw, off)
	case FieldPath:
		r.Path, _ = d.str(key, raw, off)
	case FieldStatus:
		if v, ok := d.int(key, raw); ok {
			if v < 100 || v > 599 {
				d.add(key, CodeOutOfRange, "must be an HTTP status code, 100-599")
			} else {
				r.Status = int(v)
			}
		}
	case FieldBytesIn:
		r.BytesIn, _ = d.int(key, raw)
	case FieldBytesOut:
		r.BytesOut, _ = d.int(key, raw)
	case FieldDurationMS:
		r.DurationMS, _ = d.float(key, raw)
	case FieldRTTMS:
		if v, ok := d.float(key, raw); ok {
			r.RTTMS = &v
		}
	case FieldUpstreamMS:
		if v, ok := d.float(key, raw); ok {
			r.UpstreamMS = &v
		}
	case FieldClientIP:
		// Canonical form (RFC 5952 for IPv6, IPv4-mapped unmapped), so one
		// client is one value for unique_clients: 2001:0db8:0000::1 is 2001:db8::1.
		if s, ok := d.str(key, raw, off); ok {
			a, err := netip.ParseAddr(s)
			switch {
			case err != nil:
				d.add(key, CodeInvalidFormat, "must be an IPv4 or IPv6 address")
			case a.Zone() != "":
				d.add(key, CodeInvalidFormat, "must not carry an IPv6 zone")
			default:
				r.ClientIP = a.Unmap().String()
			}
		}
	case FieldUserAgent:
		r.UserAgent, _ = d.str(key, raw, off)
	case FieldEdge:
		r.Edge, _ = d.str(key, raw, off)
	case FieldProtocol:
		r.Protocol, _ = d.str(key, raw, off)
	}
}

func (d *decoder) str(key string, raw json.RawMessage, off int) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		d.add(key, CodeWrongType, "must be a string")
		return "", false
	}
	// encoding/json silently replaces invalid UTF-8 with U+FFFD: check the raw bytes.
	if !d.utf8OK && !utf8.Valid(raw) {
		d.add(key, CodeInvalidUTF8, "must be valid UTF-8")
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 { // no escapes: the bytes between the quotes are the string
		if off >= 0 {
			return d.src[off+1 : off+len(raw)-1], true
		}
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		d.add(key, CodeWrongType, "must be a string")
		return "", false
	}
	return s, true
}

func (d *decoder) int(key string, raw json.RawMessage) (int64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		d.add(key, CodeWrongType, "must be an integer")
		return 0, false
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			d.add(key, CodeOutOfRange, "integer out of the 64-bit range")
		} else {
			d.add(key, CodeWrongType, "must be an integer")
		}
		return 0, false
	}
	return v, true
}

func (d *decoder) float(key string, raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 || !(raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		d.add(key, CodeWrongType, "must be a number")
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			d.add(key, CodeOutOfRange, "number too large")
		} else {
			d.add(key, CodeWrongType, "must be a number")
		}
		return 0, false
	}
	return v, true
}

// check applies the value rules. Fields in skip already have a problem.
// decoded is true for a record Decode built: its strings are UTF-8 and its
// client_ip canonical already (decoder.field checked them).
func (r *Record) check(skip fieldSet, decoded bool) []Problem {
	var ps []Problem
	add := func(field string, code Code, msg string) {
		if !skip.has(fieldIndex[field]) {
			ps = append(ps, Problem{Field: field, Code: code, Message: msg})
		}
	}
	if r.Timestamp.IsZero() {
		add(FieldTimestamp, CodeMissing, "required field is missing")
	} else if y := r.Timestamp.Year(); y < 1970 || y > 9999 {
		add(FieldTimestamp, CodeOutOfRange, "year must be 1970-9999")
	}

	switch {
	case r.Tenant == "":
		add(FieldTenant, CodeMissing, "required field is missing")
	case len(r.Tenant) > MaxTenantLen:
		add(FieldTenant, CodeTooLong, "at most 63 characters")
	case !ValidTenant(r.Tenant):
		add(FieldTenant, CodeInvalidFormat, "only a-z, 0-9 and '-' allowed")
	}

	switch {
	case r.Method == "":
		add(FieldMethod, CodeMissing, "required field is missing")
	case len(r.Method) > MaxMethodLen:
		add(FieldMethod, CodeTooLong, "at most 32 bytes")
	case !isToken(r.Method):
		add(FieldMethod, CodeInvalidFormat, "must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~)")
	}

	if r.Status == 0 {
		add(FieldStatus, CodeMissing, "required field is missing")
	} else if r.Status < 100 || r.Status > 599 {
		add(FieldStatus, CodeOutOfRange, "must be an HTTP status code, 100-599")
	}

	if r.Scheme != "" && r.Scheme != "http" && r.Scheme != "https" {
		add(FieldScheme, CodeInvalidFormat, "must be http or https")
	}
	if r.Path != "" {
		switch {
		case len(r.Path) > MaxPathLen:
			add(FieldPath, CodeTooLong, "at most 8 KiB")
		case r.Path[0] != '/' && r.Path != "*":
			add(FieldPath, CodeInvalidFormat, "must start with '/'")
		case strings.ContainsRune(r.Path, '?'):
			add(FieldPath, CodeInvalidFormat, "must not contain a query string")
		}
	}
	if r.ClientIP != "" && !decoded {
		if a, err := netip.ParseAddr(r.ClientIP); err != nil {
			add(FieldClientIP, CodeInvalidFormat, "must be an IPv4 or IPv6 address")
		} else if a.Zone() != "" {
			add(FieldClientIP, CodeInvalidFormat, "must not carry an IPv6 zone")
		}
	}

	checkBytes := func(field string, v int64) {
		if v < 0 || v > MaxBytes {
			add(field, CodeOutOfRange, "must be 0-1099511627776 (1 TiB)")
		}
	}
	checkBytes(FieldBytesIn, r.BytesIn)
	checkBytes(FieldBytesOut, r.BytesOut)
	checkMS := func(field string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > MaxMillis {
			add(field, CodeOutOfRange, "must be a finite number 0-86400000 (one day in ms)")
		}
	}
	checkMS(FieldDurationMS, r.DurationMS)
	if r.RTTMS != nil {
		checkMS(FieldRTTMS, *r.RTTMS)
	}
	if r.UpstreamMS != nil {
		checkMS(FieldUpstreamMS, *r.UpstreamMS)
	}

	for _, s := range []struct {
		field, value string
		max          int
	}{
		{FieldRequestID, r.RequestID, MaxRequestIDLen},
		{FieldHost, r.Host, MaxHostLen},
		{FieldUserAgent, r.UserAgent, MaxUserAgentLen},
		{FieldEdge, r.Edge, MaxEdgeLen},
		{FieldProtocol, r.Protocol, MaxProtocolLen},
	} {
		if len(s.value) > s.max {
			add(s.field, CodeTooLong, fmt.Sprintf("at most %d bytes", s.max))
		}
	}
	if decoded {
		return ps
	}
	// Records built in Go may hold any bytes; decoded ones were checked already.
	for _, s := range []struct{ field, value string }{
		{FieldTenant, r.Tenant}, {FieldRequestID, r.RequestID}, {FieldMethod, r.Method},
		{FieldHost, r.Host}, {FieldPath, r.Path}, {FieldUserAgent, r.UserAgent},
		{FieldEdge, r.Edge}, {FieldProtocol, r.Protocol}, {FieldClientIP, r.ClientIP},
	} {
		if !utf8.ValidString(s.value) {
			add(s.field, CodeInvalidUTF8, "must be valid UTF-8")
		}
	}
	return ps
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return len(s) > 0
}
