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
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
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
		"  - {tenant: globex, sha256: " + digest("globex-key") + ", disabled: true}\n"
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
	return &handler{cfg: cfg, keys: keys, sink: sink, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		metrics: newMetrics(prometheus.NewRegistry()), limiters: map[string]*rate.Limiter{}}, sink
}

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
}

func do(h http.Handler, r req) (*httptest.ResponseRecorder, response) {
	if r.ctype == "" {
		r.ctype = "application/x-ndjson"
	}
	if r.auth == "" {
		r.auth = "Bearer acme-key"
	}
	hr := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(r.body))
	hr.Header.Set("Content-Type", r.ctype)
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

func TestBadInput(t *testing.T) {
	bomb := gz(bytes.Repeat([]byte("\n"), 50<<20)) // 50 MiB of newlines, ~50 KiB compressed
	cases := []struct {
		name       string
		r          req
		status     int
		code       string // request-level code, or the first record error's code
		durableDLQ int    // records that must have reached the DLQ
	}{
		{"malformed JSON line", req{body: []byte(`{"timestamp":`)}, 422, "malformed_json", 1},
		{"wrong type", req{body: []byte(strings.Replace(okRec, `"status":200`, `"status":"200"`, 1))}, 422, "wrong_type", 1},
		{"NaN", req{body: []byte(strings.Replace(okRec, `3.5`, `NaN`, 1))}, 422, "malformed_json", 1},
		{"huge number", req{body: []byte(strings.Replace(okRec, `3.5`, `1e999`, 1))}, 422, "out_of_range", 1},
		{"invalid UTF-8", req{body: []byte(strings.Replace(okRec, `"/"`, "\"/\xff\"", 1))}, 422, "invalid_utf8", 1},
		{"missing required", req{body: []byte(`{"timestamp":"2026-11-21T10:00:00Z","status":200,"duration_ms":1}`)}, 422, "missing", 1},
		{"tenant mismatch", req{body: []byte(strings.Replace(okRec, `{`, `{"tenant":"globex",`, 1))}, 422, "tenant_mismatch", 1},
		{"oversize line", req{body: []byte(`{"x":"` + strings.Repeat("a", 5000) + `"}`)}, 413, CodeLineTooLong, 0},
		{"oversize body", req{body: bytes.Repeat([]byte(`{"x":"`+strings.Repeat("a", 3900)+"\"}\n"), 20)}, 413, CodeBodyTooLarge, 0},
		{"too many records", req{body: bytes.Repeat([]byte(okRec+"\n"), 101)}, 413, CodeTooManyRecords, 0},
		{"gzip bomb", req{body: bomb, encoding: "gzip"}, 413, CodeInflatedTooLarge, 0},
		{"not gzip", req{body: []byte(okRec), encoding: "gzip"}, 400, CodeBadGzip, 0},
		{"missing key", req{body: []byte(okRec), auth: "none"}, 401, CodeMissingKey, 0},
		{"wrong key", req{body: []byte(okRec), auth: "Bearer nope"}, 401, CodeInvalidKey, 0},
		{"basic auth", req{body: []byte(okRec), auth: "Basic YTpi"}, 401, CodeMissingKey, 0},
		{"disabled key", req{body: []byte(okRec), auth: "Bearer globex-key"}, 403, CodeKeyDisabled, 0},
		{"media type", req{body: []byte(okRec), ctype: "text/plain"}, 415, CodeUnsupportedType, 0},
		{"encoding", req{body: []byte(okRec), encoding: "br"}, 415, CodeUnsupportedEnc, 0},
		{"array malformed", req{body: []byte(`[` + okRec + `,`), ctype: "application/json"}, 400, CodeMalformedBody, 0},
		{"object not array", req{body: []byte(okRec), ctype: "application/json"}, 400, CodeMalformedBody, 0},
		{"array trailing data", req{body: []byte(`[` + okRec + `] x`), ctype: "application/json"}, 400, CodeMalformedBody, 0},
		{"empty body", req{body: []byte("\n \n")}, 400, CodeEmptyBody, 0},
		{"array element not object", req{body: []byte(`[1]`), ctype: "application/json"}, 422, "not_object", 1},
	}
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
			require.Zero(t, resp.Accepted)
			for _, e := range sink.entries {
				require.Equal(t, StreamDLQ, e.Stream, "nothing is accepted")
				require.Equal(t, tc.code, e.Reason)
				require.Equal(t, "acme", e.Tenant)
			}
			require.Len(t, sink.entries, tc.durableDLQ)
			if tc.status == 401 {
				require.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
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
	rec, resp := do(h, req{body: body})
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, CodeRateLimited, resp.Code)
	require.NotEmpty(t, rec.Header().Get("Retry-After"))
	require.Len(t, sink.entries, 80, "the refused request stored nothing")
}

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
