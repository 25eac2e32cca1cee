package logpeek

import (
	"context"
	"errors"
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

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/openapitest"
	"github.com/hourglass-io/hourglass/internal/record"
)

// failFS fails every Open of a path containing part, and every ReadDir when
// part is "".
type failFS struct {
	archive.FS
	part string
}

func (f failFS) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if strings.Contains(name, f.part) {
		return nil, errors.New("datanode unreachable")
	}
	return f.FS.Open(ctx, name)
}

func (f failFS) ReadDir(ctx context.Context, dir string) ([]archive.FileInfo, error) {
	if f.part == "" {
		return nil, errors.New("namenode unreachable")
	}
	return f.FS.ReadDir(ctx, dir)
}

// TestOpenAPIMatchesResponses sends every kind of answer of the API through
// the OpenAPI checker: the records and meta line of /v1/logs (complete, cut
// by limit, by size, by an archive failure), partitions, and every error
// status with each of its codes.
func TestOpenAPIMatchesResponses(t *testing.T) {
	spec := openapitest.Load(t, OpenAPI)
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	writeArchive(t, fsys, 3000)
	serve := func(cfg Config, fsys archive.FS) (string, *Server) {
		s, err := New(cfg, fsys, testTokens(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		require.NoError(t, err)
		ts := httptest.NewServer(spec.Handler(t, s.Handler(), openapitest.NDJSON("Record", "MetaLine")))
		t.Cleanup(ts.Close)
		return ts.URL, s
	}
	get := func(base, token, pathAndQuery string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+pathAndQuery, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res, b
	}
	q := func(path string, v url.Values) string { return path + "?" + v.Encode() }
	p := params("tenant-01", t0, t0.Add(3*time.Hour))
	base, _ := serve(DefaultConfig(), fsys)

	// Answers with records.
	res, b := get(base, "tok-one", q("/v1/logs", with(p, "limit", "10000")))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	_, m := readLogs(t, b)
	require.True(t, m.Complete)
	res, b = get(base, "tok-one", q("/v1/logs", with(p, "limit", "5")))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	_, m = readLogs(t, b)
	require.Equal(t, "limit", m.Stopped)
	res, b = get(base, "tok-one", q("/v1/logs", with(with(p, "limit", "5"), "cursor", m.NextCursor)))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	res, b = get(base, "tok-admin", q("/v1/logs", with(with(with(p, "status", "2xx,404"), "method", "get"), "min_duration_ms", "0")))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	res, b = get(base, "tok-one", q("/v1/logs", params("tenant-01", t0.Add(-48*time.Hour), t0.Add(-47*time.Hour))))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	recs, m := readLogs(t, b)
	require.Empty(t, recs)
	require.True(t, m.Complete)
	cfg := DefaultConfig()
	cfg.MaxResponseBytes = 1 << 10
	small, _ := serve(cfg, fsys)
	res, b = get(small, "tok-one", q("/v1/logs", p))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	_, m = readLogs(t, b)
	require.Equal(t, "size_limit", m.Stopped)
	broken, _ := serve(DefaultConfig(), failFS{FS: fsys, part: "hour=12"})
	res, b = get(broken, "tok-one", q("/v1/logs", with(p, "limit", "10000")))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	recs, m = readLogs(t, b)
	require.NotEmpty(t, recs)
	require.Equal(t, "error", m.Stopped)
	require.Equal(t, CodeArchiveUnavailable, m.Error.Code)

	res, b = get(base, "tok-one", q("/v1/partitions", p))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	res, b = get(base, "tok-one", q("/v1/partitions", params("tenant-01", t0.Add(-48*time.Hour), t0.Add(-47*time.Hour))))
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	require.Contains(t, string(b), `"partitions":[]`)
	res, b = get(base, "", "/openapi.json")
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))

	// Every error status, each code of it.
	raw := p.Encode()
	// Every parameter of /v1/logs once, and one more.
	many := with(with(with(with(with(with(with(with(p, "status", "200"), "method", "GET"), "path_prefix", "/"),
		"min_duration_ms", "1"), "request_id", "r"), "q", "x"), "limit", "1"), "cursor", "c").Encode() + "&extra=1"
	down, _ := serve(DefaultConfig(), failFS{FS: fsys})
	scanCfg := DefaultConfig()
	scanCfg.MaxScanBytes = 1 << 10
	scan, _ := serve(scanCfg, fsys)
	slowCfg := DefaultConfig()
	slowCfg.Deadline = 100 * time.Millisecond
	never := gateFS{FS: fsys, open: make(chan struct{})}
	slow, _ := serve(slowCfg, never)
	for _, path := range []string{"/v1/logs", "/v1/partitions"} {
		for _, c := range []struct {
			base, token, query string
			status             int
			code               string
		}{
			{base, "", raw, http.StatusUnauthorized, CodeMissingToken},
			{base, "tok-nope", raw, http.StatusUnauthorized, CodeInvalidToken},
			{base, "tok-one", with(p, "tenant", "tenant-02").Encode(), http.StatusForbidden, CodeTenantForbidden},
			{base, "tok-one", "from=2026-02-03T10:00:00Z&to=2026-02-03T11:00:00Z", http.StatusBadRequest, CodeMissingParameter},
			{base, "tok-one", with(p, "to", "yesterday").Encode(), http.StatusBadRequest, CodeInvalidParameter},
			{base, "tok-one", raw + "&nope=1", http.StatusBadRequest, CodeUnknownParameter},
			{base, "tok-one", raw + "&tenant=x;y", http.StatusBadRequest, CodeInvalidQuery},
			{base, "tok-one", "tenant=" + strings.Repeat("t", 1025), http.StatusBadRequest, CodeParameterTooLong},
			{base, "tok-one", params("tenant-01", t0, t0.Add(800*time.Hour)).Encode(), http.StatusBadRequest, CodeSpanTooLarge},
			{down, "tok-one", raw, http.StatusServiceUnavailable, CodeArchiveUnavailable},
			{slow, "tok-one", raw, http.StatusGatewayTimeout, CodeDeadlineExceeded},
		} {
			res, b := get(c.base, c.token, path+"?"+c.query)
			require.Equal(t, c.status, res.StatusCode, "%s?%s: %s", path, c.query, b)
			require.Equal(t, c.code, errorCode(t, b), "%s?%s", path, c.query)
		}
	}
	for _, c := range []struct {
		base, query string
		status      int
		code        string
	}{
		{base, with(p, "cursor", "zz").Encode(), http.StatusBadRequest, CodeInvalidCursor},
		{base, many, http.StatusBadRequest, CodeTooManyParameters}, // /v1/partitions takes 3: its 4th pair is unknown or repeated
		{base, with(p, "limit", "0").Encode(), http.StatusBadRequest, CodeInvalidParameter},
		{base, with(p, "q", strings.Repeat("q", 1025)).Encode(), http.StatusBadRequest, CodeParameterTooLong},
		{scan, raw, http.StatusUnprocessableEntity, CodeScanLimitExceeded},
	} {
		res, b := get(c.base, "tok-one", "/v1/logs?"+c.query)
		require.Equal(t, c.status, res.StatusCode, "%s: %s", c.query, b)
		require.Equal(t, c.code, errorCode(t, b), c.query)
	}

	// 503 overloaded: the one slot is held by a request waiting in the archive.
	cfg = DefaultConfig()
	cfg.MaxConcurrent = 1
	gate := gateFS{FS: fsys, open: make(chan struct{})}
	busy, s := serve(cfg, gate)
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, busy+"/v1/partitions?"+raw, nil)
		req.Header.Set("Authorization", "Bearer tok-one")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		first <- res.StatusCode
	}()
	require.Eventually(t, func() bool { return len(s.scans) == 1 }, 10*time.Second, 5*time.Millisecond)
	for _, path := range []string{"/v1/logs", "/v1/partitions"} {
		res, b := get(busy, "tok-one", path+"?"+raw)
		require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(b))
		require.Equal(t, CodeOverloaded, errorCode(t, b))
	}
	close(gate.open)
	require.Equal(t, http.StatusOK, <-first)

	require.Empty(t, spec.Uncovered(), "documented answers no test gave")
}

// The document's Record is the canonical record of internal/record: the
// same fields, in its order, with the same JSON types; the fields every
// archived line carries are required.
func TestOpenAPIRecordContract(t *testing.T) {
	spec := openapitest.Load(t, OpenAPI)
	rec := spec.Doc().Components.Schemas["Record"].Value
	var names []string
	for _, f := range record.Fields() {
		names = append(names, f.Name)
		prop := rec.Properties[f.Name]
		require.NotNil(t, prop, "field %s is not in the document", f.Name)
		want := map[record.Type]string{record.TypeString: "string", record.TypeIP: "string", record.TypeTimestamp: "string",
			record.TypeInt: "integer", record.TypeFloat: "number"}[f.Type]
		require.True(t, prop.Value.Type.Is(want), "field %s: document says %v, internal/record %s", f.Name, prop.Value.Type, f.Type)
	}
	require.Len(t, rec.Properties, len(names))
	// Required: internal/record's, and the integers it always writes.
	for _, f := range record.Fields() {
		always := f.Required || f.Name == record.FieldBytesIn || f.Name == record.FieldBytesOut
		require.Equal(t, always, slices.Contains(rec.Required, f.Name), "field %s: required", f.Name)
	}
}
