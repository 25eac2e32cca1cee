package ingress

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recAt is okRec with its event time moved by d from the handler's clock.
func recAt(d time.Duration) string {
	return strings.Replace(okRec, `"2026-11-21T10:00:00Z"`, `"`+testNow.Add(d).Format(time.RFC3339Nano)+`"`, 1)
}

// setField is okRec with key set to the raw JSON value.
func setField(key, raw string) string {
	return strings.Replace(okRec, `{`, `{"`+key+`":`+raw+`,`, 1)
}

// padded is okRec grown to exactly n bytes by an unknown "pad" key.
func padded(n int) string {
	base := strings.Replace(okRec, `{`, `{"pad":"",`, 1)
	return strings.Replace(base, `"pad":""`, `"pad":"`+strings.Repeat("p", n-len(base))+`"`, 1)
}

// withUnknownKeys is okRec with n distinct unknown keys.
func withUnknownKeys(n int) string {
	var sb strings.Builder
	sb.WriteString("{")
	for i := range n {
		fmt.Fprintf(&sb, `"u%d":0,`, i)
	}
	return sb.String() + okRec[1:]
}

func lines(recs ...string) []byte { return []byte(strings.Join(recs, "\n") + "\n") }

func repeat(rec string, n int) []byte { return bytes.Repeat([]byte(rec+"\n"), n) }

// TestBadInput: one row per class of hostile or broken input, each with the
// status and the machine-readable code it must get (the request-level code,
// or the first record error's). 78 classes (78 rows). Limits in these tests (newHandler):
// body 64 KiB, inflated 256 KiB, line 4 KiB, 100 records; the clock is testNow.
func TestBadInput(t *testing.T) {
	bomb := gz(bytes.Repeat([]byte("\n"), 50<<20)) // 50 MiB of newlines, ~50 KiB compressed
	okGz := gz(repeat(okRec, 20))
	corrupt := bytes.Clone(okGz)
	for i := 12; i < len(corrupt)-8; i += 7 {
		corrupt[i] ^= 0x55
	}
	badCRC := bytes.Clone(okGz)
	badCRC[len(badCRC)-8] ^= 0xff
	atBody := repeat(padded(1023), 64) // 64 × 1024 = 65536 bytes: the body limit exactly
	deep := `{"deep":` + strings.Repeat("[", 1500) + strings.Repeat("]", 1500) + "," + okRec[1:]
	const ndjson, array = "", "application/json"
	cases := []struct {
		name     string
		r        req
		status   int
		code     string // request-level code, or the first record error's; "" for accepted
		dlq      int    // records that must have reached the DLQ
		accepted int    // records that must have been accepted
	}{
		// method and auth
		{"method GET", req{method: http.MethodGet}, 405, CodeMethod, 0, 0},
		{"missing key", req{body: []byte(okRec), auth: "none"}, 401, CodeMissingKey, 0, 0},
		{"wrong key", req{body: []byte(okRec), auth: "Bearer nope"}, 401, CodeInvalidKey, 0, 0},
		{"basic auth", req{body: []byte(okRec), auth: "Basic YTpi"}, 401, CodeMissingKey, 0, 0},
		{"raw key without scheme", req{body: []byte(okRec), auth: "acme-key"}, 401, CodeMissingKey, 0, 0},
		{"bearer without token", req{body: []byte(okRec), auth: "Bearer   "}, 401, CodeMissingKey, 0, 0},
		{"bearer scheme any case", req{body: []byte(okRec), auth: "bEARER acme-key"}, 202, "", 0, 1},
		{"disabled key", req{body: []byte(okRec), auth: "Bearer globex-key"}, 403, CodeKeyDisabled, 0, 0},
		// media type and encoding
		{"media type text/plain", req{body: []byte(okRec), ctype: "text/plain"}, 415, CodeUnsupportedType, 0, 0},
		{"media type missing", req{body: []byte(okRec), ctype: "none"}, 415, CodeUnsupportedType, 0, 0},
		{"media type malformed", req{body: []byte(okRec), ctype: "application/"}, 415, CodeUnsupportedType, 0, 0},
		{"encoding br", req{body: []byte(okRec), encoding: "br"}, 415, CodeUnsupportedEnc, 0, 0},
		{"encoding stacked", req{body: gz(gz([]byte(okRec))), encoding: "gzip, gzip"}, 415, CodeUnsupportedEnc, 0, 0},
		{"not gzip", req{body: []byte(okRec), encoding: "gzip"}, 400, CodeBadGzip, 0, 0},
		{"gzip corrupt", req{body: corrupt, encoding: "gzip"}, 400, CodeBadGzip, 0, 0},
		{"gzip truncated", req{body: okGz[:len(okGz)-12], encoding: "gzip"}, 400, CodeBadGzip, 0, 0},
		{"gzip bad checksum", req{body: badCRC, encoding: "gzip"}, 400, CodeBadGzip, 0, 0},
		{"gzip bomb", req{body: bomb, encoding: "gzip"}, 413, CodeInflatedTooLarge, 0, 0},
		{"x-gzip is gzip", req{body: okGz, encoding: "x-gzip"}, 202, "", 0, 20},
		// limits, each at the bound and one past it
		{"body at the limit", req{body: atBody}, 202, "", 0, 64},
		{"body limit+1", req{body: append(bytes.Clone(atBody), ' ')}, 413, CodeBodyTooLarge, 0, 0},
		{"records at the limit", req{body: repeat(okRec, 100)}, 202, "", 0, 100},
		{"records limit+1", req{body: repeat(okRec, 101)}, 413, CodeTooManyRecords, 0, 0},
		{"line at the limit", req{body: lines(padded(4096))}, 202, "", 0, 1},
		{"line limit+1", req{body: lines(padded(4097))}, 413, CodeLineTooLong, 0, 0},
		{"line limit+1 without newline", req{body: []byte(padded(4097))}, 413, CodeLineTooLong, 0, 0},
		{"array element at the limit", req{body: []byte("[" + padded(4096) + "]"), ctype: array}, 202, "", 0, 1},
		{"array element limit+1", req{body: []byte("[" + padded(4097) + "]"), ctype: array}, 413, CodeLineTooLong, 0, 0},
		{"array records limit+1", req{body: []byte("[" + strings.Repeat(okRec+",", 100) + okRec + "]"), ctype: array}, 413, CodeTooManyRecords, 0, 0},
		{"unknown keys at the limit", req{body: []byte(withUnknownKeys(64))}, 202, "", 0, 1},
		{"unknown keys limit+1", req{body: []byte(withUnknownKeys(65))}, 422, "too_many_fields", 1, 0},
		// body framing
		{"empty body", req{body: []byte("\n \n")}, 400, CodeEmptyBody, 0, 0},
		{"empty array", req{body: []byte(" [ ] "), ctype: array}, 400, CodeEmptyBody, 0, 0},
		{"array malformed", req{body: []byte(`[` + okRec + `,`), ctype: array}, 400, CodeMalformedBody, 0, 0},
		{"array trailing comma", req{body: []byte(`[` + okRec + `,]`), ctype: array}, 400, CodeMalformedBody, 0, 0},
		{"array missing comma", req{body: []byte(`[` + okRec + okRec + `]`), ctype: array}, 400, CodeMalformedBody, 0, 0},
		{"object not array", req{body: []byte(okRec), ctype: array}, 400, CodeMalformedBody, 0, 0},
		{"array trailing data", req{body: []byte(`[` + okRec + `] x`), ctype: array}, 400, CodeMalformedBody, 0, 0},
		{"array element not object", req{body: []byte(`[1]`), ctype: array}, 422, "not_object", 1, 0},
		{"array element string", req{body: []byte(`["a,]\"b"]`), ctype: array}, 422, "not_object", 1, 0},
		{"array element broken JSON", req{body: []byte(`[{"a":}]`), ctype: array}, 422, "malformed_json", 1, 0},
		{"array element mismatched brackets", req{body: []byte(`[{"a":]}]`), ctype: array}, 400, CodeMalformedBody, 0, 0},
		// JSON edge cases
		{"malformed JSON line", req{body: []byte(`{"timestamp":`)}, 422, "malformed_json", 1, 0},
		{"line not an object", req{body: []byte(`[` + okRec + `]`)}, 422, "not_object", 1, 0},
		{"byte order mark", req{body: []byte("\xef\xbb\xbf" + okRec)}, 422, "malformed_json", 1, 0},
		{"trailing garbage", req{body: []byte(okRec + ` x`)}, 422, "malformed_json", 1, 0},
		{"NaN literal", req{body: []byte(strings.Replace(okRec, `3.5`, `NaN`, 1))}, 422, "malformed_json", 1, 0},
		{"Infinity literal", req{body: []byte(strings.Replace(okRec, `3.5`, `Infinity`, 1))}, 422, "malformed_json", 1, 0},
		{"-Infinity literal", req{body: []byte(strings.Replace(okRec, `3.5`, `-Infinity`, 1))}, 422, "malformed_json", 1, 0},
		{"1e400", req{body: []byte(strings.Replace(okRec, `3.5`, `1e400`, 1))}, 422, "out_of_range", 1, 0},
		{"huge exponent 1e999999999", req{body: []byte(strings.Replace(okRec, `3.5`, `1e999999999`, 1))}, 422, "out_of_range", 1, 0},
		{"tiny exponent is zero", req{body: []byte(strings.Replace(okRec, `3.5`, `1e-999999999`, 1))}, 202, "", 0, 1},
		{"-0", req{body: []byte(strings.Replace(okRec, `3.5`, `-0`, 1))}, 202, "", 0, 1},
		{"int field with fraction", req{body: []byte(strings.Replace(okRec, `"status":200`, `"status":200.0`, 1))}, 422, "wrong_type", 1, 0},
		{"int field in exponent form", req{body: []byte(setField("bytes_in", `1e3`))}, 422, "wrong_type", 1, 0},
		{"int field over int64", req{body: []byte(setField("bytes_out", `9223372036854775808`))}, 422, "out_of_range", 1, 0},
		{"duplicate key, last wins", req{body: []byte(strings.Replace(okRec, `"status":200`, `"status":200,"status":"x"`, 1))}, 422, "wrong_type", 1, 0},
		{"deeply nested unknown value", req{body: []byte(deep)}, 202, "", 0, 1},
		{"wrong type", req{body: []byte(strings.Replace(okRec, `"status":200`, `"status":"200"`, 1))}, 422, "wrong_type", 1, 0},
		{"invalid UTF-8", req{body: []byte(strings.Replace(okRec, `"/"`, "\"/\xff\"", 1))}, 422, "invalid_utf8", 1, 0},
		{"missing required", req{body: []byte(`{"timestamp":"2026-11-21T10:00:00Z","status":200,"duration_ms":1}`)}, 422, "missing", 1, 0},
		// value ranges
		{"status 600", req{body: []byte(strings.Replace(okRec, `"status":200`, `"status":600`, 1))}, 422, "out_of_range", 1, 0},
		{"negative bytes", req{body: []byte(setField("bytes_out", `-1`))}, 422, "out_of_range", 1, 0},
		{"bytes at 1 TiB", req{body: []byte(setField("bytes_out", `1099511627776`))}, 202, "", 0, 1},
		{"bytes over 1 TiB", req{body: []byte(setField("bytes_out", `1099511627777`))}, 422, "out_of_range", 1, 0},
		{"duration at one day", req{body: []byte(strings.Replace(okRec, `3.5`, `86400000`, 1))}, 202, "", 0, 1},
		{"duration over one day", req{body: []byte(strings.Replace(okRec, `3.5`, `86400000.5`, 1))}, 422, "out_of_range", 1, 0},
		{"rtt over one day", req{body: []byte(setField("rtt_ms", `1.79e308`))}, 422, "out_of_range", 1, 0},
		{"event time at max future", req{body: []byte(recAt(5 * time.Minute))}, 202, "", 0, 1},
		{"event time past max future", req{body: []byte(recAt(5*time.Minute + time.Millisecond))}, 422, "out_of_range", 1, 0},
		{"event time 2099", req{body: []byte(strings.Replace(okRec, `2026-11-21`, `2099-01-01`, 1))}, 422, "out_of_range", 1, 0},
		{"event time at max past", req{body: []byte(recAt(-7 * 24 * time.Hour))}, 202, "", 0, 1},
		{"event time past max past", req{body: []byte(recAt(-7*24*time.Hour - time.Millisecond))}, 422, "out_of_range", 1, 0},
		// tenant and addresses
		{"tenant mismatch", req{body: []byte(setField("tenant", `"globex"`))}, 422, "tenant_mismatch", 1, 0},
		{"own tenant named", req{body: []byte(setField("tenant", `"acme"`))}, 202, "", 0, 1},
		{"IPv6 with zone", req{body: []byte(setField("client_ip", `"fe80::1%eth0"`))}, 422, "invalid_format", 1, 0},
		{"IPv4 with leading zeros", req{body: []byte(setField("client_ip", `"010.0.0.1"`))}, 422, "invalid_format", 1, 0},
		{"IPv6 long form", req{body: []byte(setField("client_ip", `"2001:0db8:0000:0000:0000:0000:0000:0001"`))}, 202, "", 0, 1},
	}
	require.GreaterOrEqual(t, len(cases), 35)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, sink := newHandler(t, nil)
			rec, resp := do(h, tc.r)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			code := resp.Code
			if code == "" && len(resp.Errors) > 0 {
				code = resp.Errors[0].Code
			}
			require.Equal(t, tc.code, code, rec.Body.String())
			require.Equal(t, tc.accepted, resp.Accepted)
			var dlq, raw int
			for _, e := range sink.entries {
				require.Equal(t, "acme", e.Tenant)
				if e.Stream == StreamDLQ {
					require.Equal(t, tc.code, string(e.Reason))
					dlq++
				} else {
					raw++
				}
			}
			require.Equal(t, tc.dlq, dlq, "records in the DLQ")
			require.Equal(t, tc.accepted, raw, "accepted records at the sink")
			switch tc.status {
			case 401:
				require.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
			case 202:
				require.Empty(t, resp.Errors)
			}
		})
	}
}

// TestClientIPCanonicalAtIngress: two spellings of one address are stored as
// one value, so unique_clients counts one client.
func TestClientIPCanonicalAtIngress(t *testing.T) {
	h, sink := newHandler(t, nil)
	rec, _ := do(h, req{body: lines(setField("client_ip", `"2001:0db8:0000::1"`), setField("client_ip", `"2001:db8::1"`),
		setField("client_ip", `"::ffff:192.0.2.7"`))})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	var ips []string
	for _, e := range sink.entries {
		var m map[string]any
		require.NoError(t, json.Unmarshal(e.Value, &m))
		ips = append(ips, m["client_ip"].(string))
	}
	require.Equal(t, []string{"2001:db8::1", "2001:db8::1", "192.0.2.7"}, ips)
}

// TestEventTimeOutOfRangeNextToOthers: an out-of-range event time is reported
// with the record's other problems, and the rest of the request is accepted.
func TestEventTimeOutOfRangeNextToOthers(t *testing.T) {
	h, sink := newHandler(t, nil)
	future := strings.Replace(recAt(time.Hour), `"status":200`, `"status":"x"`, 1)
	rec, resp := do(h, req{body: lines(okRec, future)})
	require.Equal(t, http.StatusMultiStatus, rec.Code, rec.Body.String())
	require.Equal(t, 1, resp.Accepted)
	require.Len(t, resp.Errors, 2)
	require.Equal(t, recordError{Index: 1, Field: "timestamp", Code: "out_of_range", Message: resp.Errors[0].Message}, resp.Errors[0])
	require.Contains(t, resp.Errors[0].Message, "more than 5m0s after 2026-11-21T10:00:30Z")
	require.Equal(t, "status", resp.Errors[1].Field)
	require.Len(t, sink.entries, 2)
	require.Equal(t, "out_of_range", string(sink.entries[1].Reason))
}
