package logpeek

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/auth"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)

func digest(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

func testTokens(t testing.TB) *auth.Tokens {
	tok, err := auth.Parse([]byte(fmt.Sprintf(`
tokens:
  - {name: dev-one, sha256: %s, role: developer, tenants: [tenant-01]}
  - {name: dev-two, sha256: %s, role: developer, tenants: [tenant-02, tenant-03]}
  - {name: sre, sha256: %s, role: admin}
`, digest("tok-one"), digest("tok-two"), digest("tok-admin"))))
	require.NoError(t, err)
	return tok
}

// writeArchive writes n generated records over three hours into fsys as
// the archiver lays them out (two Kafka partitions, files of ~200 records)
// and returns them.
func writeArchive(t testing.TB, fsys archive.FS, n int) []record.Record {
	return writeArchiveOf(t, fsys, 3, n)
}

// writeArchiveOf is writeArchive over the given number of tenants.
func writeArchiveOf(t testing.TB, fsys archive.FS, tenants, n int) []record.Record {
	return writeArchiveGen(t, fsys, gen.Config{Seed: 11, Tenants: tenants}, n)
}

// writeArchiveGen is writeArchive of the records cfg generates (its Start,
// Rate and Disorder set as writeArchive's).
func writeArchiveGen(t testing.TB, fsys archive.FS, cfg gen.Config, n int) []record.Record {
	ctx := context.Background()
	cfg.Start, cfg.Rate, cfg.Disorder = t0, float64(n)/(3*3600), 10*time.Minute
	g := gen.New(cfg)
	type bucket struct {
		first, last int64
		buf         bytes.Buffer
		n           int
	}
	type bkey struct {
		h archive.Hour
		p int
	}
	buckets := map[bkey]*bucket{}
	var recs []record.Record
	flush := func(k bkey, b *bucket) {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(b.buf.Bytes())
		require.NoError(t, zw.Close())
		require.NoError(t, archive.WriteFile(ctx, fsys, k.h.Dir()+"/"+archive.Part{Partition: k.p, First: b.first, Last: b.last}.Name(), z.Bytes()))
		delete(buckets, k)
	}
	for i := range n {
		r := g.Next()
		recs = append(recs, r)
		k := bkey{archive.HourOf(r.Tenant, r.Timestamp), i % 2}
		b := buckets[k]
		if b == nil {
			b = &bucket{first: int64(i)}
			buckets[k] = b
		}
		line, err := json.Marshal(r)
		require.NoError(t, err)
		b.buf.Write(append(line, '\n'))
		b.last = int64(i)
		if b.n++; b.n == 200 {
			flush(k, b)
		}
	}
	for k, b := range buckets {
		flush(k, b)
	}
	return recs
}

type testServer struct {
	*httptest.Server
	recs []record.Record
}

func newTestServer(t *testing.T, cfg Config, n int) *testServer {
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	recs := writeArchive(t, fsys, n)
	ts, _ := serveOn(t, cfg, fsys)
	ts.recs = recs
	return ts
}

// serveOn serves the API over fsys.
func serveOn(t *testing.T, cfg Config, fsys archive.FS) (*testServer, *Server) {
	s, err := New(cfg, fsys, testTokens(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &testServer{Server: ts}, s
}

func (ts *testServer) get(t *testing.T, token, path string, params url.Values) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL+path+"?"+params.Encode(), nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, body
}

// readLogs splits an NDJSON answer into records and its meta line.
func readLogs(t *testing.T, body []byte) ([]record.Record, meta) {
	t.Helper()
	var recs []record.Record
	var m *meta
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		require.Nil(t, m, "the meta line is the last line")
		if bytes.HasPrefix(sc.Bytes(), []byte(`{"_meta":`)) {
			var w struct {
				Meta meta `json:"_meta"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &w))
			m = &w.Meta
			continue
		}
		r, _, err := record.Decode(sc.Bytes())
		require.NoError(t, err)
		recs = append(recs, r)
	}
	require.NotNil(t, m, "an answer ends with its meta line")
	return recs, *m
}

func params(tenant string, from, to time.Time) url.Values {
	return url.Values{"tenant": {tenant}, "from": {from.Format(time.RFC3339Nano)}, "to": {to.Format(time.RFC3339Nano)}}
}

func want(recs []record.Record, keep func(r *record.Record) bool) []string {
	var out []string
	for i := range recs {
		if keep(&recs[i]) {
			out = append(out, recs[i].RequestID)
		}
	}
	slices.Sort(out)
	return out
}

func ids(recs []record.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.RequestID
	}
	slices.Sort(out)
	return out
}

func TestLogsExactAndOrdered(t *testing.T) {
	ts := newTestServer(t, DefaultConfig(), 6000)
	from, to := t0.Add(30*time.Minute), t0.Add(2*time.Hour+10*time.Minute)
	p := params("tenant-02", from, to)
	p.Set("limit", "10000")
	res, body := ts.get(t, "tok-two", "/v1/logs", p)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	require.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
	got, m := readLogs(t, body)
	require.True(t, m.Complete)
	require.Empty(t, m.NextCursor)
	require.Equal(t, want(ts.recs, func(r *record.Record) bool {
		return r.Tenant == "tenant-02" && !r.Timestamp.Before(from) && r.Timestamp.Before(to)
	}), ids(got), "exactly the tenant's records in the range")
	for i := 1; i < len(got); i++ {
		require.False(t, got[i].Timestamp.Before(got[i-1].Timestamp), "time order (hours in order, time order within each)")
	}

	// Filters.
	p = params("tenant-02", t0, t0.Add(3*time.Hour))
	p.Set("status", "2xx,404")
	p.Set("method", "get,post")
	p.Set("path_prefix", "/api/v1/items")
	p.Set("min_duration_ms", "20")
	p.Set("q", `"edge":"edge-2"`)
	p.Set("limit", "10000")
	res, body = ts.get(t, "tok-two", "/v1/logs", p)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	got, _ = readLogs(t, body)
	w := want(ts.recs, func(r *record.Record) bool {
		return r.Tenant == "tenant-02" && !r.Timestamp.Before(t0) && (r.Status/100 == 2 || r.Status == 404) && (r.Method == "GET" || r.Method == "POST") &&
			strings.HasPrefix(r.Path, "/api/v1/items") && r.DurationMS >= 20 && r.Edge == "edge-2"
	})
	require.NotEmpty(t, w)
	require.Equal(t, w, ids(got))

	one := w[len(w)/2]
	p = params("tenant-02", t0, t0.Add(3*time.Hour))
	p.Set("request_id", one)
	_, body = ts.get(t, "tok-two", "/v1/logs", p)
	got, _ = readLogs(t, body)
	require.Equal(t, []string{one}, ids(got))
}

func TestLogsCursorPages(t *testing.T) {
	ts := newTestServer(t, DefaultConfig(), 3000)
	p := params("tenant-01", t0, t0.Add(3*time.Hour))
	p.Set("status", "2xx")
	p.Set("limit", "37")
	var all []record.Record
	pages := 0
	for {
		res, body := ts.get(t, "tok-one", "/v1/logs", p)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		got, m := readLogs(t, body)
		all = append(all, got...)
		pages++
		if m.Complete {
			break
		}
		require.Equal(t, "limit", m.Stopped)
		require.Len(t, got, 37)
		p.Set("cursor", m.NextCursor)
	}
	require.Equal(t, want(ts.recs, func(r *record.Record) bool {
		return r.Tenant == "tenant-01" && r.Status/100 == 2 && !r.Timestamp.Before(t0)
	}), ids(all),
		"pages join to the full answer, no record twice")
	require.Greater(t, pages, 5)
	for i := 1; i < len(all); i++ {
		require.False(t, all[i].Timestamp.Before(all[i-1].Timestamp))
	}

	// A cursor is bound to its query.
	p.Set("status", "5xx")
	res, body := ts.get(t, "tok-one", "/v1/logs", p)
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Contains(t, string(body), CodeInvalidCursor)
}

func TestTenantIsolation(t *testing.T) {
	ts := newTestServer(t, DefaultConfig(), 2000)
	cases := []struct {
		token, tenant string
		status        int
		code          string
	}{
		{"tok-one", "tenant-01", 200, ""},
		{"tok-one", "tenant-02", 403, CodeTenantForbidden},
		{"tok-one", "tenant-99", 403, CodeTenantForbidden}, // same answer for a tenant that does not exist
		{"tok-two", "tenant-01", 403, CodeTenantForbidden},
		{"tok-two", "tenant-03", 200, ""},
		{"tok-admin", "tenant-01", 200, ""},
		{"tok-admin", "tenant-03", 200, ""},
		{"", "tenant-01", 401, CodeMissingToken},
		{"tok-nope", "tenant-01", 401, CodeInvalidToken},
	}
	for _, c := range cases {
		for _, path := range []string{"/v1/logs", "/v1/partitions"} {
			t.Run(c.token+"/"+c.tenant+path, func(t *testing.T) {
				p := params(c.tenant, t0, t0.Add(3*time.Hour))
				if path == "/v1/logs" {
					p.Set("limit", "10000")
				}
				res, body := ts.get(t, c.token, path, p)
				require.Equal(t, c.status, res.StatusCode, string(body))
				if c.status != 200 {
					require.Equal(t, c.code, errorCode(t, body))
					return
				}
				if path == "/v1/partitions" {
					var out struct {
						Partitions []partitionInfo `json:"partitions"`
					}
					require.NoError(t, json.Unmarshal(body, &out))
					require.Len(t, out.Partitions, 3)
					return
				}
				got, _ := readLogs(t, body)
				require.NotEmpty(t, got)
				for _, r := range got {
					require.Equal(t, c.tenant, r.Tenant)
				}
				require.Equal(t, want(ts.recs, func(r *record.Record) bool {
					return r.Tenant == c.tenant && !r.Timestamp.Before(t0) && r.Timestamp.Before(t0.Add(3*time.Hour))
				}), ids(got))
			})
		}
	}
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Error apiError }
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.NotEmpty(t, e.Error.Message)
	return e.Error.Code
}

// mkCursor makes a cursor for the /v1/logs query v, at k, issued at issued.
func mkCursor(t *testing.T, v url.Values, k key, issued time.Time) string {
	t.Helper()
	q, aerr := parseLogs(v, DefaultConfig(), issued)
	require.Nil(t, aerr)
	return encodeCursor(q, k, issued)
}

// TestBadInput is the bad-input table of the API: 74 rows, each a class of
// hostile or broken request (and, beside some, the request exactly at the
// bound, which passes), each with the status and code it must get.
func TestBadInput(t *testing.T) {
	ts := newTestServer(t, DefaultConfig(), 200)
	from, to := t0, t0.Add(time.Hour)
	ok := params("tenant-01", from, to)
	with := func(kv ...string) url.Values {
		p := maps.Clone(ok)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				p.Del(kv[i])
			} else {
				p.Set(kv[i], kv[i+1])
			}
		}
		return p
	}
	enc := func(v url.Values) string { return v.Encode() }
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }
	now := time.Now()
	inHour := key{Hour: t0.Unix(), TS: t0.Add(time.Minute).UnixNano(), File: "part-0-1-2.jsonl.gz", Line: 3}
	v1 := base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"q":1,"k":{"h":` + fmt.Sprint(t0.Unix()) + `,"t":0,"f":"","l":0}}`))
	all := with("status", "2xx", "method", "GET", "path_prefix", "/", "min_duration_ms", "0", "request_id", "x", "q", "x", "limit", "10")
	all.Set("cursor", mkCursor(t, all, inHour, now)) // all 11 parameters: exactly maxParams

	const (
		get, post = http.MethodGet, http.MethodPost
		logs      = "/v1/logs"
		parts     = "/v1/partitions"
	)
	cases := []struct {
		name   string
		method string
		auth   string // the Authorization header
		path   string
		query  string // raw query string
		status int
		code   string // "" for 200
	}{
		// Authentication and method (before anything else is looked at).
		{"no token", get, "", logs, enc(ok), 401, CodeMissingToken},
		{"empty bearer", get, "Bearer ", logs, enc(ok), 401, CodeMissingToken},
		{"basic scheme", get, "Basic dG9rLW9uZQ==", logs, enc(ok), 401, CodeMissingToken},
		{"token without scheme", get, "tok-one", logs, enc(ok), 401, CodeMissingToken},
		{"unknown token", get, "Bearer tok-nope", logs, enc(ok), 401, CodeInvalidToken},
		{"token of another case", get, "Bearer TOK-ONE", logs, enc(ok), 401, CodeInvalidToken},
		{"scheme in lower case", get, "bearer tok-one", logs, enc(ok), 200, ""},
		{"no token, bad query", get, "", logs, "q=%zz", 401, CodeMissingToken},
		{"POST", post, "Bearer tok-one", logs, enc(ok), 405, CodeMethodNotAllowed},
		{"DELETE partitions", http.MethodDelete, "Bearer tok-one", parts, enc(ok), 405, CodeMethodNotAllowed},
		{"unknown endpoint", get, "Bearer tok-one", "/v1/log", enc(ok), 404, CodeNotFound},
		// Tenant scope.
		{"tenant not in token", get, "Bearer tok-one", logs, enc(with("tenant", "tenant-02")), 403, CodeTenantForbidden},
		{"tenant that does not exist", get, "Bearer tok-one", parts, enc(with("tenant", "tenant-99")), 403, CodeTenantForbidden},
		// Malformed query strings (r.URL.Query() would drop these pairs).
		{"semicolon in a value", get, "Bearer tok-one", logs, enc(ok) + "&status=599;x", 400, CodeInvalidQuery},
		{"semicolon separator", get, "Bearer tok-one", logs, "tenant=tenant-01;from=" + rfc(from) + "&to=" + rfc(to), 400, CodeInvalidQuery},
		{"bad escape in a value", get, "Bearer tok-one", logs, enc(ok) + "&q=%zz", 400, CodeInvalidQuery},
		{"truncated escape", get, "Bearer tok-one", logs, enc(ok) + "&q=abc%2", 400, CodeInvalidQuery},
		{"bad escape in a name", get, "Bearer tok-one", logs, enc(ok) + "&%zz=1", 400, CodeInvalidQuery},
		{"escaped semicolon is data", get, "Bearer tok-one", logs, enc(ok) + "&q=%3B", 200, ""},
		// Parameter names, repeats, counts.
		{"unknown parameter", get, "Bearer tok-one", logs, enc(ok) + "&tenantt=x", 400, CodeUnknownParameter},
		{"filter on partitions", get, "Bearer tok-one", parts, enc(ok) + "&status=500", 400, CodeUnknownParameter},
		{"name without value", get, "Bearer tok-one", logs, enc(ok) + "&debug", 400, CodeUnknownParameter},
		{"repeated parameter", get, "Bearer tok-one", logs, enc(ok) + "&tenant=tenant-02", 400, CodeInvalidParameter},
		{"repeated empty parameter", get, "Bearer tok-one", logs, enc(ok) + "&q=&q=x", 400, CodeInvalidParameter},
		{"11 parameters (the bound)", get, "Bearer tok-one", logs, enc(all), 200, ""},
		{"12 parameters", get, "Bearer tok-one", logs, enc(all) + "&q=y", 400, CodeTooManyParameters},
		{"empty pairs do not count", get, "Bearer tok-one", logs, "&&" + enc(all) + "&&", 200, ""},
		// Value lengths, at the bound and one past.
		{"q of 1 KiB", get, "Bearer tok-one", logs, enc(with("q", strings.Repeat("x", 1024))), 200, ""},
		{"q of 1 KiB + 1", get, "Bearer tok-one", logs, enc(with("q", strings.Repeat("x", 1025))), 400, CodeParameterTooLong},
		{"q escaped past 3 KiB", get, "Bearer tok-one", logs, enc(ok) + "&q=" + strings.Repeat("%41", 1025), 400, CodeParameterTooLong},
		{"request_id of 128", get, "Bearer tok-one", logs, enc(with("request_id", strings.Repeat("x", 128))), 200, ""},
		{"request_id of 129", get, "Bearer tok-one", logs, enc(with("request_id", strings.Repeat("x", 129))), 400, CodeParameterTooLong},
		{"path_prefix of 8 KiB", get, "Bearer tok-one", logs, enc(with("path_prefix", "/"+strings.Repeat("x", 8191))), 200, ""},
		{"path_prefix of 8 KiB + 1", get, "Bearer tok-one", logs, enc(with("path_prefix", "/"+strings.Repeat("x", 8192))), 400, CodeParameterTooLong},
		{"long tenant", get, "Bearer tok-one", logs, enc(with("tenant", strings.Repeat("a", 1025))), 400, CodeParameterTooLong},
		{"long cursor", get, "Bearer tok-one", logs, enc(with("cursor", strings.Repeat("A", 1025))), 400, CodeParameterTooLong},
		// Tenant and time range.
		{"no tenant", get, "Bearer tok-one", logs, enc(with("tenant", "")), 400, CodeMissingParameter},
		{"bad tenant", get, "Bearer tok-one", logs, enc(with("tenant", "Tenant_1")), 400, CodeInvalidParameter},
		{"no from", get, "Bearer tok-one", logs, enc(with("from", "")), 400, CodeMissingParameter},
		{"no to", get, "Bearer tok-one", parts, enc(with("to", "")), 400, CodeMissingParameter},
		{"from a word", get, "Bearer tok-one", logs, enc(with("from", "yesterday")), 400, CodeInvalidParameter},
		{"from a date only", get, "Bearer tok-one", logs, enc(with("from", "2026-02-03")), 400, CodeInvalidParameter},
		{"from after to", get, "Bearer tok-one", logs, enc(with("to", rfc(t0.Add(-time.Hour)))), 400, CodeInvalidParameter},
		{"empty range", get, "Bearer tok-one", logs, enc(with("to", rfc(t0))), 400, CodeInvalidParameter},
		{"span of 24h (the bound)", get, "Bearer tok-one", logs, enc(with("to", rfc(t0.Add(24*time.Hour)))), 200, ""},
		{"span of 24h+1s", get, "Bearer tok-one", logs, enc(with("to", rfc(t0.Add(24*time.Hour+time.Second)))), 400, CodeSpanTooLarge},
		{"partitions span over 31d", get, "Bearer tok-one", parts, enc(with("to", rfc(t0.Add(32*24*time.Hour)))), 400, CodeSpanTooLarge},
		// Filters.
		{"status word", get, "Bearer tok-one", logs, enc(with("status", "ok")), 400, CodeInvalidParameter},
		{"status 600", get, "Bearer tok-one", logs, enc(with("status", "600")), 400, CodeInvalidParameter},
		{"status class 6xx", get, "Bearer tok-one", logs, enc(with("status", "6xx")), 400, CodeInvalidParameter},
		{"status empty item", get, "Bearer tok-one", logs, enc(with("status", "500,")), 400, CodeInvalidParameter},
		{"method with space", get, "Bearer tok-one", logs, enc(with("method", "GE T")), 400, CodeInvalidParameter},
		{"path prefix relative", get, "Bearer tok-one", logs, enc(with("path_prefix", "api")), 400, CodeInvalidParameter},
		{"negative duration", get, "Bearer tok-one", logs, enc(with("min_duration_ms", "-1")), 400, CodeInvalidParameter},
		{"duration NaN", get, "Bearer tok-one", logs, enc(with("min_duration_ms", "NaN")), 400, CodeInvalidParameter},
		{"duration word", get, "Bearer tok-one", logs, enc(with("min_duration_ms", "slow")), 400, CodeInvalidParameter},
		// Limit.
		{"limit 1", get, "Bearer tok-one", logs, enc(with("limit", "1")), 200, ""},
		{"limit 0", get, "Bearer tok-one", logs, enc(with("limit", "0")), 400, CodeInvalidParameter},
		{"limit negative", get, "Bearer tok-one", logs, enc(with("limit", "-5")), 400, CodeInvalidParameter},
		{"limit 10000 (the bound)", get, "Bearer tok-one", logs, enc(with("limit", "10000")), 200, ""},
		{"limit 10001", get, "Bearer tok-one", logs, enc(with("limit", "10001")), 400, CodeInvalidParameter},
		{"limit not an integer", get, "Bearer tok-one", logs, enc(with("limit", "2.5")), 400, CodeInvalidParameter},
		{"limit word", get, "Bearer tok-one", logs, enc(with("limit", "all")), 400, CodeInvalidParameter},
		// Cursors.
		{"cursor of this query", get, "Bearer tok-one", logs, enc(with("cursor", mkCursor(t, ok, inHour, now))), 200, ""},
		{"cursor garbage", get, "Bearer tok-one", logs, enc(with("cursor", "not-a-cursor")), 400, CodeInvalidCursor},
		{"cursor not base64", get, "Bearer tok-one", logs, enc(with("cursor", "!!")), 400, CodeInvalidCursor},
		{"cursor of version 1", get, "Bearer tok-one", logs, enc(with("cursor", v1)), 400, CodeInvalidCursor},
		{"cursor of other filters", get, "Bearer tok-one", logs, enc(with("cursor", mkCursor(t, with("status", "5xx"), inHour, now))), 400, CodeInvalidCursor},
		{"cursor of another tenant", get, "Bearer tok-one", logs, enc(with("cursor", mkCursor(t, with("tenant", "tenant-02"), inHour, now))), 400, CodeInvalidCursor},
		{"cursor expired", get, "Bearer tok-one", logs, enc(with("cursor", mkCursor(t, ok, inHour, now.Add(-25*time.Hour)))), 400, CodeInvalidCursor},
		{"cursor from the future", get, "Bearer tok-one", logs, enc(with("cursor", mkCursor(t, ok, inHour, now.Add(time.Hour)))), 400, CodeInvalidCursor},
		{"cursor outside the range", get, "Bearer tok-one", logs, enc(with("cursor", mkCursor(t, ok, key{Hour: t0.Add(-time.Hour).Unix()}, now))), 400, CodeInvalidCursor},
		{"cursor off the hour", get, "Bearer tok-one", logs, enc(with("cursor", mkCursor(t, ok, key{Hour: t0.Unix() + 1}, now))), 400, CodeInvalidCursor},
		{"cursor negative line", get, "Bearer tok-one", logs, enc(with("cursor", mkCursor(t, ok, key{Hour: t0.Unix(), Line: -1}, now))), 400, CodeInvalidCursor},
	}
	require.Equal(t, 74, len(cases), "update the count in the comment above")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, ts.URL+c.path+"?"+c.query, nil)
			require.NoError(t, err)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			res, err := ts.Client().Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, c.status, res.StatusCode, string(body))
			if c.status == http.StatusOK {
				if c.path == logs {
					_, m := readLogs(t, body)
					require.Empty(t, m.Error)
				}
				return
			}
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			require.Equal(t, c.code, errorCode(t, body))
		})
	}
}

func TestScanLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxScanBytes = 1 << 10
	ts := newTestServer(t, cfg, 3000)
	res, body := ts.get(t, "tok-one", "/v1/logs", params("tenant-01", t0, t0.Add(3*time.Hour)))
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Equal(t, CodeScanLimitExceeded, errorCode(t, body))
}

func TestTokensFile(t *testing.T) {
	d := digest("x")
	for name, bad := range map[string]string{
		"no name":          `{tokens: [{sha256: ` + d + `, role: admin}]}`,
		"plain token":      `{tokens: [{name: a, sha256: secret, role: admin}]}`,
		"bad role":         `{tokens: [{name: a, sha256: ` + d + `, role: root}]}`,
		"dev no tenants":   `{tokens: [{name: a, sha256: ` + d + `, role: developer}]}`,
		"admin w/ tenants": `{tokens: [{name: a, sha256: ` + d + `, role: admin, tenants: [x]}]}`,
		"bad tenant":       `{tokens: [{name: a, sha256: ` + d + `, role: developer, tenants: [X]}]}`,
		"duplicate":        `{tokens: [{name: a, sha256: ` + d + `, role: admin}, {name: b, sha256: ` + d + `, role: admin}]}`,
		"unknown key":      `{tokens: [{name: a, sha256: ` + d + `, role: admin, tenant: x}]}`,
	} {
		_, err := auth.Parse([]byte(bad))
		require.Error(t, err, name)
	}
	tok := testTokens(t)
	p, ok := tok.Lookup("tok-two")
	require.True(t, ok)
	require.Equal(t, "dev-two", p.Name)
	require.True(t, p.CanRead("tenant-03"))
	require.False(t, p.CanRead("tenant-01"))
	_, ok = tok.Lookup("tok-tw")
	require.False(t, ok)
}

func TestCursorRoundTrip(t *testing.T) {
	q := &logsQuery{span: span{tenant: "a", from: t0, to: t0.Add(time.Hour)}, minDuration: -1}
	k := key{Hour: t0.Unix(), TS: t0.Add(time.Second).UnixNano(), File: "part-1-2-3.jsonl.gz", Line: 9}
	c, err := decodeCursor(encodeCursor(q, k, t0))
	require.NoError(t, err)
	require.Equal(t, k, c.Key)
	require.Equal(t, q.fingerprint(), c.Query)
	require.Equal(t, t0.Unix(), c.Issued)
	require.NoError(t, q.checkCursor(c, time.Hour, t0.Add(time.Hour)), "at the TTL")
	require.ErrorContains(t, q.checkCursor(c, time.Hour, t0.Add(time.Hour+time.Second)), "expired")
	q2 := *q
	q2.pathPrefix = "/x"
	require.NotEqual(t, q.fingerprint(), q2.fingerprint())
	for _, bad := range []string{"", "!!", "e30", "eyJ2IjozfQ"} {
		_, err := decodeCursor(bad)
		require.Error(t, err, bad)
	}
	require.Negative(t, startOfHour(t0).compare(k))
	require.Positive(t, startOfHour(t0.Add(time.Hour)).compare(k))
}

// recordBytes is what an NDJSON answer's records weigh (lines and newlines).
func recordBytes(body []byte) int64 {
	var n int64
	for _, l := range bytes.SplitAfter(body, []byte("\n")) {
		if len(l) > 0 && !bytes.HasPrefix(l, []byte(`{"_meta":`)) {
			n += int64(len(l))
		}
	}
	return n
}

func TestMaxResponseBytes(t *testing.T) {
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	recs := writeArchive(t, fsys, 3000)
	p := params("tenant-01", t0, t0.Add(3*time.Hour))
	p.Set("limit", "10000")
	wantIDs := want(recs, func(r *record.Record) bool {
		return r.Tenant == "tenant-01" && !r.Timestamp.Before(t0) && r.Timestamp.Before(t0.Add(3*time.Hour))
	})

	ts, _ := serveOn(t, DefaultConfig(), fsys)
	res, body := ts.get(t, "tok-one", "/v1/logs", p)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	got, m := readLogs(t, body)
	require.True(t, m.Complete)
	require.Equal(t, wantIDs, ids(got))
	total := recordBytes(body)
	require.Equal(t, total, m.Bytes, "meta counts the record bytes sent")
	require.Greater(t, total, int64(1<<10))

	// Exactly at the bound: the whole answer.
	cfg := DefaultConfig()
	cfg.MaxResponseBytes = total
	ts, _ = serveOn(t, cfg, fsys)
	res, body = ts.get(t, "tok-one", "/v1/logs", p)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	got, m = readLogs(t, body)
	require.True(t, m.Complete, "an answer of exactly MaxResponseBytes is complete")
	require.Equal(t, wantIDs, ids(got))

	// One byte less: all but the last record, and a cursor to it.
	cfg.MaxResponseBytes = total - 1
	ts, _ = serveOn(t, cfg, fsys)
	res, body = ts.get(t, "tok-one", "/v1/logs", p)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	first, m := readLogs(t, body)
	require.False(t, m.Complete)
	require.Equal(t, "size_limit", m.Stopped)
	require.Len(t, first, len(wantIDs)-1)
	require.LessOrEqual(t, recordBytes(body), total-1)
	p.Set("cursor", m.NextCursor)
	res, body = ts.get(t, "tok-one", "/v1/logs", p)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	rest, m := readLogs(t, body)
	require.True(t, m.Complete)
	require.Len(t, rest, 1)
	require.Equal(t, wantIDs, ids(append(first, rest...)))

	// Small pages: each within the bound, joined they are the answer.
	cfg.MaxResponseBytes = 4 << 10
	ts, _ = serveOn(t, cfg, fsys)
	p.Del("cursor")
	var all []record.Record
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000)
		res, body := ts.get(t, "tok-one", "/v1/logs", p)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		got, m := readLogs(t, body)
		require.LessOrEqual(t, recordBytes(body), cfg.MaxResponseBytes)
		all = append(all, got...)
		if m.Complete {
			break
		}
		require.Equal(t, "size_limit", m.Stopped)
		p.Set("cursor", m.NextCursor)
	}
	require.Equal(t, wantIDs, ids(all), "no record lost or repeated across pages")
	for i := 1; i < len(all); i++ {
		require.False(t, all[i].Timestamp.Before(all[i-1].Timestamp))
	}
}

// TestSelection checks the bounded selection against a reference: sort
// everything, keep the prefix that fits.
func TestSelection(t *testing.T) {
	for seed := range 200 {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		n := rng.IntN(60)
		need := 1 + rng.IntN(20)
		budget := int64(rng.IntN(450)) - 50 // negative: what a page has left after a first record over the bound
		first := rng.IntN(2) == 0
		type offer struct {
			k    key
			line []byte
		}
		var offers []offer
		for i := range n {
			offers = append(offers, offer{key{Hour: 3600, TS: int64(rng.IntN(20)), File: "f", Line: i}, bytes.Repeat([]byte{'x'}, 1+rng.IntN(80))})
		}
		sel := newSelection(need, budget, first)
		for _, o := range offers {
			sel.offer(o.k, o.line)
		}
		slices.SortFunc(offers, func(a, b offer) int { return a.k.compare(b.k) })
		var wantKeys []key
		var used int64
		wantCut := false
		for _, o := range offers {
			if len(wantKeys) == need {
				break
			}
			size := int64(len(o.line)) + 1
			if used+size > budget && !(first && len(wantKeys) == 0) {
				wantCut = true
				break
			}
			wantKeys = append(wantKeys, o.k)
			used += size
		}
		var gotKeys []key
		var gotBytes int64
		for _, m := range sel.sorted() {
			gotKeys = append(gotKeys, m.k)
			gotBytes += m.size()
		}
		require.Equal(t, wantKeys, gotKeys, "seed %d", seed)
		require.Equal(t, used, gotBytes, "seed %d", seed)
		require.Equal(t, wantCut, sel.truncated(), "seed %d", seed)
		require.Equal(t, used, sel.bytes, "seed %d", seed)
	}
}

// gateFS holds every directory listing until open is closed.
type gateFS struct {
	archive.FS
	open chan struct{}
}

func (g gateFS) ReadDir(ctx context.Context, dir string) ([]archive.FileInfo, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.FS.ReadDir(ctx, dir)
}

func TestMaxConcurrent(t *testing.T) {
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	writeArchive(t, fsys, 300)
	gate := gateFS{FS: fsys, open: make(chan struct{})}
	cfg := DefaultConfig()
	cfg.MaxConcurrent = 2
	ts, s := serveOn(t, cfg, gate)
	p := params("tenant-01", t0, t0.Add(3*time.Hour))

	// Two requests, the bound, are admitted and wait in the archive.
	statuses := make(chan int, 2)
	for _, path := range []string{"/v1/logs", "/v1/partitions"} {
		go func() {
			req, _ := http.NewRequest(http.MethodGet, ts.URL+path+"?"+p.Encode(), nil)
			req.Header.Set("Authorization", "Bearer tok-one")
			res, err := ts.Client().Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	require.Eventually(t, func() bool { return len(s.scans) == 2 }, 10*time.Second, 5*time.Millisecond)

	// One more is refused at once, with Retry-After.
	for _, path := range []string{"/v1/logs", "/v1/partitions"} {
		res, body := ts.get(t, "tok-one", path, p)
		require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(body))
		require.Equal(t, CodeOverloaded, errorCode(t, body))
		require.Equal(t, "2", res.Header.Get("Retry-After"))
	}
	// A bad request is still answered for what it is: it never takes a slot.
	res, body := ts.get(t, "tok-one", "/v1/logs", with(p, "limit", "0"))
	require.Equal(t, http.StatusBadRequest, res.StatusCode, string(body))
	res, body = ts.get(t, "tok-one", "/v1/logs", with(p, "tenant", "tenant-02"))
	require.Equal(t, http.StatusForbidden, res.StatusCode, string(body))

	close(gate.open)
	require.Equal(t, http.StatusOK, <-statuses)
	require.Equal(t, http.StatusOK, <-statuses)
	require.Empty(t, s.scans, "slots are given back")
	res, body = ts.get(t, "tok-one", "/v1/logs", p)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
}

func with(p url.Values, k, v string) url.Values {
	q := maps.Clone(p)
	q.Set(k, v)
	return q
}

// TestScanErrorInOrder: with part files read at once, a failed hour is
// answered as reading them in order answers it: the first bad file's
// error, the bytes up to it.
func TestScanErrorInOrder(t *testing.T) {
	dir := t.TempDir()
	fsys, err := archive.NewLocal(dir)
	require.NoError(t, err)
	writeArchive(t, fsys, 15000) // ~12 files a tenant-hour
	h := archive.HourOf("tenant-01", t0.Add(time.Hour))
	parts, _, err := archive.ListHour(context.Background(), fsys, h)
	require.NoError(t, err)
	require.Greater(t, len(parts), 6)
	// Two files of the second hour are not gzip; the first of them in the
	// hour's order is the answer's error.
	for _, f := range []archive.PartFile{parts[5], parts[2]} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.FromSlash(f.Path())), bytes.Repeat([]byte("not gzip "), 2000), 0o644))
	}
	p := with(params("tenant-01", t0, t0.Add(2*time.Hour)), "limit", "10000")
	var want []byte
	for _, workers := range []int{1, 4, 4, 4, 4, 4, 2, 3} {
		ts, s := serveOn(t, DefaultConfig(), fsys)
		s.scanWorkers = workers
		now := time.Now()
		s.now = func() time.Time { return now.Truncate(time.Hour) }
		res, body := ts.get(t, "tok-one", "/v1/logs", p)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		_, m := readLogs(t, body)
		require.Equal(t, "error", m.Stopped)
		require.Contains(t, m.Error.Message, parts[2].Path())
		if want == nil {
			want = body
		}
		require.Equal(t, string(want), string(body), "%d workers", workers)
	}
}
