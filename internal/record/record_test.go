package record

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const good = `{"timestamp":"2026-11-21T10:15:30.123+01:00","tenant":"acme-1","request_id":"r-1",` +
	`"method":"GET","scheme":"https","host":"acme.example","path":"/api/v1/items","status":200,` +
	`"bytes_in":512,"bytes_out":2048,"duration_ms":12.5,"rtt_ms":3.25,"upstream_ms":10,` +
	`"client_ip":"2001:db8::1","user_agent":"curl/8.0","edge":"edge-1","protocol":"HTTP/1.1"}`

// with returns the good record with key set to the raw JSON value (or removed
// when raw is empty).
func with(key, raw string) string {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(good), &m); err != nil {
		panic(err)
	}
	if raw == "" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(raw)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestDecodeGood(t *testing.T) {
	rec, unknown, err := Decode([]byte(good))
	require.NoError(t, err)
	require.Empty(t, unknown)
	rtt, up := 3.25, 10.0
	require.Equal(t, Record{
		Timestamp: time.Date(2026, 11, 21, 9, 15, 30, 123e6, time.UTC),
		Tenant:    "acme-1", RequestID: "r-1", Method: "GET", Scheme: "https",
		Host: "acme.example", Path: "/api/v1/items", Status: 200, BytesIn: 512, BytesOut: 2048,
		DurationMS: 12.5, RTTMS: &rtt, UpstreamMS: &up, ClientIP: "2001:db8::1",
		UserAgent: "curl/8.0", Edge: "edge-1", Protocol: "HTTP/1.1",
	}, rec)
	require.Equal(t, time.UTC, rec.Timestamp.Location(), "timestamps are normalized to UTC")
}

func TestDecodeMinimal(t *testing.T) {
	rec, _, err := Decode([]byte(`{"timestamp":"2026-11-21T00:00:00Z","tenant":"t","method":"GET","status":204,"duration_ms":0}`))
	require.NoError(t, err)
	require.Nil(t, rec.RTTMS, "absent optional numbers stay absent, not zero")
	require.Zero(t, rec.DurationMS)
}

func TestDecodeUnknownFieldsDroppedAndNamed(t *testing.T) {
	rec, unknown, err := Decode([]byte(with("zeta", `1`)[:len(with("zeta", `1`))-1] + `,"alpha":{"x":[1]}}`))
	require.NoError(t, err)
	require.Equal(t, []string{"alpha", "zeta"}, unknown)
	out, err := json.Marshal(rec)
	require.NoError(t, err)
	require.NotContains(t, string(out), "zeta")
}

type want struct {
	field string
	code  Code
}

func TestDecodeBad(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  []want
	}{
		{"empty", ``, []want{{"", CodeMalformedJSON}}},
		{"truncated json", `{"tenant":"a"`, []want{{"", CodeMalformedJSON}}},
		{"trailing garbage", good + `x`, []want{{"", CodeMalformedJSON}}},
		{"NaN literal", with("duration_ms", `1`)[:10] + `NaN}`, []want{{"", CodeMalformedJSON}}},
		{"array", `[1,2]`, []want{{"", CodeNotObject}}},
		{"string", `"hello"`, []want{{"", CodeNotObject}}},
		{"null", `null`, []want{{"", CodeNotObject}}},
		{"missing timestamp", with("timestamp", ""), []want{{"timestamp", CodeMissing}}},
		{"null timestamp", with("timestamp", "null"), []want{{"timestamp", CodeMissing}}},
		{"bad timestamp", with("timestamp", `"21/11/2026"`), []want{{"timestamp", CodeInvalidFormat}}},
		{"timestamp without zone", with("timestamp", `"2026-11-21T10:00:00"`), []want{{"timestamp", CodeInvalidFormat}}},
		{"timestamp number", with("timestamp", `1763719200`), []want{{"timestamp", CodeWrongType}}},
		{"timestamp year 1", with("timestamp", `"0001-01-01T00:00:01Z"`), []want{{"timestamp", CodeOutOfRange}}},
		{"missing tenant", with("tenant", ""), []want{{"tenant", CodeMissing}}},
		{"tenant upper case", with("tenant", `"ACME"`), []want{{"tenant", CodeInvalidFormat}}},
		{"tenant too long", with("tenant", `"`+strings.Repeat("a", 64)+`"`), []want{{"tenant", CodeTooLong}}},
		{"tenant number", with("tenant", `7`), []want{{"tenant", CodeWrongType}}},
		{"missing method", with("method", ""), []want{{"method", CodeMissing}}},
		{"method with space", with("method", `"GE T"`), []want{{"method", CodeInvalidFormat}}},
		{"missing status", with("status", ""), []want{{"status", CodeMissing}}},
		{"status string", with("status", `"200"`), []want{{"status", CodeWrongType}}},
		{"status float", with("status", `200.5`), []want{{"status", CodeWrongType}}},
		{"status 99", with("status", `99`), []want{{"status", CodeOutOfRange}}},
		{"status 600", with("status", `600`), []want{{"status", CodeOutOfRange}}},
		{"huge status", with("status", `99999999999999999999999`), []want{{"status", CodeOutOfRange}}},
		{"missing duration", with("duration_ms", ""), []want{{"duration_ms", CodeMissing}}},
		{"negative duration", with("duration_ms", `-1`), []want{{"duration_ms", CodeOutOfRange}}},
		{"huge duration", with("duration_ms", `1e400`), []want{{"duration_ms", CodeOutOfRange}}},
		{"duration bool", with("duration_ms", `true`), []want{{"duration_ms", CodeWrongType}}},
		{"duration NaN string", with("duration_ms", `"NaN"`), []want{{"duration_ms", CodeWrongType}}},
		{"negative bytes", with("bytes_out", `-5`), []want{{"bytes_out", CodeOutOfRange}}},
		{"bytes float", with("bytes_in", `1.5`), []want{{"bytes_in", CodeWrongType}}},
		{"bytes object", with("bytes_in", `{}`), []want{{"bytes_in", CodeWrongType}}},
		{"rtt negative", with("rtt_ms", `-0.5`), []want{{"rtt_ms", CodeOutOfRange}}},
		{"upstream array", with("upstream_ms", `[1]`), []want{{"upstream_ms", CodeWrongType}}},
		{"bad scheme", with("scheme", `"ftp"`), []want{{"scheme", CodeInvalidFormat}}},
		{"path with query", with("path", `"/a?token=x"`), []want{{"path", CodeInvalidFormat}}},
		{"relative path", with("path", `"a/b"`), []want{{"path", CodeInvalidFormat}}},
		{"bad ip", with("client_ip", `"300.1.1.1"`), []want{{"client_ip", CodeInvalidFormat}}},
		{"user agent too long", with("user_agent", `"`+strings.Repeat("x", 1025)+`"`), []want{{"user_agent", CodeTooLong}}},
		{"invalid utf8", with("user_agent", `"ok"`)[:len(good)-40] + "\xff\xfe" + good[len(good)-40:], nil},
		{"several problems", `{"tenant":"Bad!","status":"x","duration_ms":-2,"method":"GET"}`, []want{
			{"timestamp", CodeMissing}, {"tenant", CodeInvalidFormat},
			{"status", CodeWrongType}, {"duration_ms", CodeOutOfRange}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode([]byte(tc.input))
			require.Error(t, err)
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			if tc.want == nil { // only that it fails, with some code
				require.NotEmpty(t, inv.Reason())
				return
			}
			got := make([]want, len(inv.Problems))
			for i, p := range inv.Problems {
				got[i] = want{p.Field, p.Code}
				require.NotEmpty(t, p.Message)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, tc.want[0].code, inv.Reason())
		})
	}
}

func TestDecodeInvalidUTF8InString(t *testing.T) {
	in := strings.Replace(good, `"curl/8.0"`, "\"curl/\xff\xfe\"", 1)
	_, _, err := Decode([]byte(in))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, []Problem{{Field: "user_agent", Code: CodeInvalidUTF8, Message: "must be valid UTF-8"}}, inv.Problems)
}

func TestRoundTrip(t *testing.T) {
	rec, _, err := Decode([]byte(good))
	require.NoError(t, err)
	out, err := json.Marshal(rec)
	require.NoError(t, err)
	require.Contains(t, string(out), `"timestamp":"2026-11-21T09:15:30.123Z"`)
	again, unknown, err := Decode(out)
	require.NoError(t, err)
	require.Empty(t, unknown)
	require.Equal(t, rec, again)
}

func TestValidateGoRecord(t *testing.T) {
	r := Record{Timestamp: time.Now(), Tenant: "t1", Method: "POST", Status: 201}
	require.NoError(t, r.Validate(), "duration 0 is valid")

	r = Record{BytesIn: -1, Tenant: "Bad Tenant"}
	err := r.Validate()
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	codes := map[string]Code{}
	for _, p := range inv.Problems {
		codes[p.Field] = p.Code
	}
	require.Equal(t, map[string]Code{
		"timestamp": CodeMissing, "tenant": CodeInvalidFormat, "method": CodeMissing,
		"status": CodeMissing, "bytes_in": CodeOutOfRange,
	}, codes)
}

func TestFieldsCoverStruct(t *testing.T) {
	// Every field of the contract is a JSON key of Record and vice versa.
	rtt, up := 1.0, 1.0
	full := Record{Timestamp: time.Now(), RTTMS: &rtt, UpstreamMS: &up, Tenant: "a", RequestID: "a",
		Method: "a", Scheme: "a", Host: "a", Path: "a", ClientIP: "a", UserAgent: "a", Edge: "a", Protocol: "a"}
	b, err := json.Marshal(full)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	var keys []string
	for _, f := range Fields() {
		keys = append(keys, f.Name)
		_, ok := Lookup(f.Name)
		require.True(t, ok)
	}
	require.ElementsMatch(t, keys, mapKeys(m))
}

func mapKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestFieldSetHoldsEveryField(t *testing.T) {
	require.LessOrEqual(t, len(Fields()), 32, "fieldSet is a uint32 bitmask")
}
