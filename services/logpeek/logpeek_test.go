package logpeek

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)

func digest(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

func testTokens(t testing.TB) *Tokens {
	tok, err := ParseTokens([]byte(fmt.Sprintf(`
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
	ctx := context.Background()
	g := gen.New(gen.Config{Seed: 11, Tenants: 3, Start: t0, Rate: float64(n) / (3 * 3600), Disorder: 10 * time.Minute})
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
	s, err := New(cfg, fsys, testTokens(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return &testServer{Server: ts, recs: recs}
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

func TestBadParameters(t *testing.T) {
	ts := newTestServer(t, DefaultConfig(), 200)
	ok := params("tenant-01", t0, t0.Add(time.Hour))
	with := func(k, v string) url.Values {
		p := url.Values{}
		for k, v := range ok {
			p[k] = v
		}
		if v == "" {
			p.Del(k)
		} else {
			p.Set(k, v)
		}
		return p
	}
	cases := []struct {
		name   string
		path   string
		params url.Values
		status int
		code   string
	}{
		{"no tenant", "/v1/logs", with("tenant", ""), 400, CodeMissingParameter},
		{"bad tenant", "/v1/logs", with("tenant", "Tenant_1"), 400, CodeInvalidParameter},
		{"no from", "/v1/logs", with("from", ""), 400, CodeMissingParameter},
		{"no to", "/v1/partitions", with("to", ""), 400, CodeMissingParameter},
		{"bad from", "/v1/logs", with("from", "yesterday"), 400, CodeInvalidParameter},
		{"date only", "/v1/logs", with("from", "2026-02-03"), 400, CodeInvalidParameter},
		{"to before from", "/v1/logs", with("to", t0.Add(-time.Hour).Format(time.RFC3339)), 400, CodeInvalidParameter},
		{"empty range", "/v1/logs", with("to", t0.Format(time.RFC3339)), 400, CodeInvalidParameter},
		{"span too large", "/v1/logs", with("to", t0.Add(25*time.Hour).Format(time.RFC3339)), 400, CodeSpanTooLarge},
		{"partitions span too large", "/v1/partitions", with("to", t0.Add(32*24*time.Hour).Format(time.RFC3339)), 400, CodeSpanTooLarge},
		{"status word", "/v1/logs", with("status", "ok"), 400, CodeInvalidParameter},
		{"status range", "/v1/logs", with("status", "600"), 400, CodeInvalidParameter},
		{"status class", "/v1/logs", with("status", "6xx"), 400, CodeInvalidParameter},
		{"method with space", "/v1/logs", with("method", "GE T"), 400, CodeInvalidParameter},
		{"path prefix relative", "/v1/logs", with("path_prefix", "api"), 400, CodeInvalidParameter},
		{"negative duration", "/v1/logs", with("min_duration_ms", "-1"), 400, CodeInvalidParameter},
		{"duration word", "/v1/logs", with("min_duration_ms", "slow"), 400, CodeInvalidParameter},
		{"long request id", "/v1/logs", with("request_id", strings.Repeat("x", 129)), 400, CodeInvalidParameter},
		{"long q", "/v1/logs", with("q", strings.Repeat("x", 1025)), 400, CodeInvalidParameter},
		{"limit zero", "/v1/logs", with("limit", "0"), 400, CodeInvalidParameter},
		{"limit too big", "/v1/logs", with("limit", "10001"), 400, CodeInvalidParameter},
		{"limit word", "/v1/logs", with("limit", "all"), 400, CodeInvalidParameter},
		{"cursor garbage", "/v1/logs", with("cursor", "not-a-cursor"), 400, CodeInvalidCursor},
		{"unknown parameter", "/v1/logs", with("tenantt", "x"), 400, CodeUnknownParameter},
		{"filter on partitions", "/v1/partitions", with("status", "500"), 400, CodeUnknownParameter},
		{"repeated parameter", "/v1/logs", url.Values{"tenant": {"tenant-01", "tenant-02"}, "from": ok["from"], "to": ok["to"]}, 400, CodeInvalidParameter},
		{"unknown endpoint", "/v1/log", ok, 404, CodeNotFound},
		{"forbidden beats nothing", "/v1/logs", with("tenant", "tenant-02"), 403, CodeTenantForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, body := ts.get(t, "tok-one", c.path, c.params)
			require.Equal(t, c.status, res.StatusCode, string(body))
			require.Equal(t, "application/json", res.Header.Get("Content-Type"))
			require.Equal(t, c.code, errorCode(t, body))
		})
	}
	res, err := ts.Client().Post(ts.URL+"/v1/logs?"+ok.Encode(), "text/plain", nil)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
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
		_, err := ParseTokens([]byte(bad))
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
	c, err := decodeCursor(encodeCursor(q, k))
	require.NoError(t, err)
	require.Equal(t, k, c.Key)
	require.Equal(t, q.fingerprint(), c.Query)
	q2 := *q
	q2.pathPrefix = "/x"
	require.NotEqual(t, q.fingerprint(), q2.fingerprint())
	for _, bad := range []string{"", "!!", "e30", "eyJ2IjoyfQ"} {
		_, err := decodeCursor(bad)
		require.Error(t, err, bad)
	}
	require.Negative(t, startOfHour(t0).compare(k))
	require.Positive(t, startOfHour(t0.Add(time.Hour)).compare(k))
}
