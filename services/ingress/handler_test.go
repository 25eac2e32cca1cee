package ingress

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// memSink is an in-memory Sink for handler tests.
type memSink struct {
	mu      sync.Mutex
	entries []Entry
	fail    error
}

func (m *memSink) Write(_ context.Context, es []Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.entries = append(m.entries, es...)
	return nil
}
func (m *memSink) Ready(context.Context) error { return m.fail }
func (m *memSink) Close() error                { return nil }

func digest(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}

func writeKeys(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	body := "keys:\n" +
		"  - {tenant: acme, sha256: " + digest("acme-key") + "}\n" +
		"  - {tenant: globex, sha256: " + digest("globex-key") + ", disabled: true}\n" +
		"  - {tenant: initech, sha256: " + digest("initech-key") + "}\n"
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

func newHandler(t *testing.T, mutate func(*Config)) (*handler, *memSink) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.KeysFile = writeKeys(t)
	cfg.MaxBodyBytes = 64 << 10
	cfg.MaxInflatedBytes = 256 << 10
	cfg.MaxLineBytes = 4 << 10
	cfg.MaxRecords = 100
	cfg.TenantBurst = 1000
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	keys, err := LoadKeys(cfg.KeysFile)
	require.NoError(t, err)
	sink := &memSink{}
	h := newLogsHandler(cfg, keys, sink, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics(prometheus.NewRegistry()))
	h.now = func() time.Time { return testNow }
	return h, sink
}

// testNow is the ingress clock in handler tests: okRec is 30 s before it.
var testNow = time.Date(2026, 11, 21, 10, 0, 30, 0, time.UTC)

const okRec = `{"timestamp":"2026-11-21T10:00:00Z","method":"GET","path":"/","status":200,"duration_ms":3.5}`

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

type req struct {
	body     []byte
	ctype    string
	encoding string
	auth     string
	method   string
}

func do(h http.Handler, r req) (*httptest.ResponseRecorder, response) {
	return doReader(h, r, bytes.NewReader(r.body))
}

func doReader(h http.Handler, r req, body io.Reader) (*httptest.ResponseRecorder, response) {
	if r.ctype == "" {
		r.ctype = "application/x-ndjson"
	}
	if r.auth == "" {
		r.auth = "Bearer acme-key"
	}
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	hr := httptest.NewRequest(method, "/v1/logs", body)
	if r.ctype != "none" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	if r.encoding != "" {
		hr.Header.Set("Content-Encoding", r.encoding)
	}
	if r.auth != "none" {
		hr.Header.Set("Authorization", r.auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, hr)
	var resp response
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec, resp
}

func TestPartialAcceptance(t *testing.T) {
	h, sink := newHandler(t, nil)
	body := okRec + "\n" + `{"bad":` + "\n" + strings.Replace(okRec, `{`, `{"tenant":"acme","extra":1,`, 1) + "\n"
	rec, resp := do(h, req{body: []byte(body)})
	require.Equal(t, http.StatusMultiStatus, rec.Code)
	require.Equal(t, 2, resp.Accepted)
	require.Equal(t, 1, resp.Rejected)
	require.Equal(t, []recordError{{Index: 1, Code: "malformed_json", Message: resp.Errors[0].Message}}, resp.Errors)
	require.Len(t, sink.entries, 3)
	require.Equal(t, StreamRaw, sink.entries[0].Stream)
	require.Equal(t, StreamDLQ, sink.entries[1].Stream)
	require.Equal(t, `{"bad":`, string(sink.entries[1].Value), "the DLQ gets the line as received")
	var stored map[string]any
	require.NoError(t, json.Unmarshal(sink.entries[2].Value, &stored))
	require.Equal(t, "acme", stored["tenant"], "the tenant comes from the key")
	require.NotContains(t, stored, "extra", "unknown fields are dropped")
}

func TestAcceptedGzipArray(t *testing.T) {
	h, sink := newHandler(t, nil)
	rec, resp := do(h, req{body: gz([]byte(`[` + okRec + `,` + okRec + `]`)), ctype: "application/json; charset=utf-8", encoding: "gzip"})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.Equal(t, 2, resp.Accepted)
	require.Len(t, sink.entries, 2)
}

func TestRateLimit(t *testing.T) {
	h, sink := newHandler(t, func(c *Config) { c.TenantRate = 1; c.TenantBurst = 100 })
	body := bytes.Repeat([]byte(okRec+"\n"), 80)
	rec, _ := do(h, req{body: body})
	require.Equal(t, http.StatusAccepted, rec.Code)
	// 20 tokens left: admitted, and its 80 records take the bucket 60 into debt.
	rec, _ = do(h, req{body: body})
	require.Equal(t, http.StatusAccepted, rec.Code)

	// In debt: refused from the headers alone, the body is never read.
	spy := &readSpy{r: bytes.NewReader(body)}
	rec, resp := doReader(h, req{}, spy)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, CodeRateLimited, resp.Code)
	require.False(t, spy.read, "a rate-limited request's body is not read")
	retry, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 61, retry, 2, "until the debt of 60 is repaid and one token is back, at 1/s")
	require.Len(t, sink.entries, 160, "the refused request stored nothing")

	// Another tenant is not affected by acme's debt.
	rec, _ = do(h, req{body: []byte(okRec), auth: "Bearer initech-key"})
	require.Equal(t, http.StatusAccepted, rec.Code)
}

// readSpy records whether a body was read at all.
type readSpy struct {
	r    io.Reader
	read bool
}

func (s *readSpy) Read(p []byte) (int, error) { s.read = true; return s.r.Read(p) }

func TestSinkUnavailable(t *testing.T) {
	h, sink := newHandler(t, nil)
	sink.fail = errors.New("broker down")
	rec, resp := do(h, req{body: []byte(okRec)})
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, CodeSinkUnavailable, resp.Code)
	require.Equal(t, "5", rec.Header().Get("Retry-After"))
}

func TestMethod(t *testing.T) {
	h, _ := newHandler(t, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/logs", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

func TestKeysReloadAndValidation(t *testing.T) {
	path := writeKeys(t)
	k, err := LoadKeys(path)
	require.NoError(t, err)
	_, ok := k.Lookup("acme-key")
	require.True(t, ok)
	require.NoError(t, os.WriteFile(path, []byte("keys:\n  - {tenant: acme, sha256: "+digest("new-key")+"}\n"), 0o600))
	require.NoError(t, k.Reload(path))
	_, ok = k.Lookup("acme-key")
	require.False(t, ok, "the old key is gone after reload")
	_, ok = k.Lookup("new-key")
	require.True(t, ok)

	require.NoError(t, os.WriteFile(path, []byte("keys:\n  - {tenant: ACME, sha256: plain-text-key}\n"), 0o600))
	err = k.Reload(path)
	require.ErrorContains(t, err, "tenant")
	require.ErrorContains(t, err, "64 hex digits")
	_, ok = k.Lookup("new-key")
	require.True(t, ok, "a broken file leaves the keys in force")
}
