package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/openapitest"
	"github.com/hourglass-io/hourglass/internal/record"
)

// startIntake runs the whole intake (New: the mux of the intake address)
// over sink, behind the OpenAPI checker. Limits as in newHandler.
func startIntake(t *testing.T, spec *openapitest.Spec, sink Sink, mutate func(*Config)) string {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.KeysFile = writeKeys(t)
	cfg.MaxBodyBytes = 64 << 10
	cfg.MaxInflatedBytes = 256 << 10
	cfg.MaxLineBytes = 4 << 10
	cfg.MaxRecords = 100
	cfg.TenantBurst = 1000
	if mutate != nil {
		mutate(&cfg)
	}
	svc, err := New(cfg, sink, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	// Served by httptest instead of Run (no listener of its own).
	srv := httptest.NewServer(spec.Handler(t, svc.srv.Handler))
	t.Cleanup(srv.Close) // waits for the handlers, and so for their checks
	return srv.URL
}

type post struct {
	path, method string
	body         []byte
	ctype, enc   string
	key          string // "" : acme-key; "none": no Authorization
}

func send(t *testing.T, base string, p post) (*http.Response, []byte) {
	t.Helper()
	if p.method == "" {
		p.method = http.MethodPost
	}
	if p.path == "" {
		p.path = "/v1/logs"
	}
	req, err := http.NewRequest(p.method, base+p.path, bytes.NewReader(p.body))
	require.NoError(t, err)
	if p.method == http.MethodPost {
		req.Header.Set("Content-Type", cmpOr(p.ctype, "application/x-ndjson"))
	}
	if p.enc != "" {
		req.Header.Set("Content-Encoding", p.enc)
	}
	switch p.key {
	case "none":
	case "":
		req.Header.Set("Authorization", "Bearer acme-key")
	default:
		req.Header.Set("Authorization", "Bearer "+p.key)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// nowRec is a valid record dated now (the intake's own clock).
func nowRec() string {
	return strings.Replace(okRec, `"2026-11-21T10:00:00Z"`, `"`+time.Now().UTC().Format(time.RFC3339)+`"`, 1)
}

// TestOpenAPIMatchesResponses sends every answer the intake address gives
// through the OpenAPI checker: each status of POST /v1/logs with each of its
// codes, /healthz, /readyz and /openapi.json.
func TestOpenAPIMatchesResponses(t *testing.T) {
	spec := openapitest.Load(t, OpenAPI)
	base := startIntake(t, spec, &memSink{}, nil)
	ok := nowRec()
	bad := strings.Replace(ok, `"status":200`, `"status":"x"`, 1)
	other := strings.Replace(ok, `{`, `{"tenant":"initech",`, 1)
	late := strings.Replace(okRec, `"2026-11-21T10:00:00Z"`, `"2001-01-01T00:00:00Z"`, 1)
	noMethod := strings.Replace(strings.Replace(ok, `"method":"GET",`, ``, 1), `"duration_ms":3.5`, `"duration_ms":-1,"client_ip":"nope","scheme":"ftp"`, 1)
	bomb := gz(bytes.Repeat([]byte("\n"), 1<<20))
	badGzip := append(gz([]byte(ok))[:12], "not gzip at all"...)

	for _, c := range []struct {
		name   string
		p      post
		status int
		code   string // the request-level code, or the first record error's
	}{
		{"ndjson accepted", post{body: lines(ok, ok)}, http.StatusAccepted, ""},
		{"gzip array accepted", post{body: gz([]byte("[" + ok + "," + ok + "]")), ctype: "application/json; charset=utf-8", enc: "gzip"}, http.StatusAccepted, ""},
		{"jsonl accepted", post{body: lines(ok), ctype: "application/jsonl"}, http.StatusAccepted, ""},
		{"some rejected", post{body: lines(ok, `{"bad":`, other, withUnknownKeys(65))}, http.StatusMultiStatus, string(record.CodeMalformedJSON)},
		{"all rejected", post{body: lines(bad, `[1]`, late, noMethod, "{\"method\":\"\xff\"}")}, http.StatusUnprocessableEntity, string(record.CodeWrongType)},
		{"not an array", post{body: []byte(ok), ctype: "application/json"}, http.StatusBadRequest, CodeMalformedBody},
		{"corrupt gzip", post{body: badGzip, enc: "gzip"}, http.StatusBadRequest, CodeBadGzip},
		{"empty", post{body: []byte("\n\n")}, http.StatusBadRequest, CodeEmptyBody},
		{"no key", post{body: lines(ok), key: "none"}, http.StatusUnauthorized, CodeMissingKey},
		{"unknown key", post{body: lines(ok), key: "nope"}, http.StatusUnauthorized, CodeInvalidKey},
		{"disabled key", post{body: lines(ok), key: "globex-key"}, http.StatusForbidden, CodeKeyDisabled},
		{"body over its limit", post{body: repeat(padded(1000), 70)}, http.StatusRequestEntityTooLarge, CodeBodyTooLarge},
		{"inflated over its limit", post{body: bomb, enc: "gzip"}, http.StatusRequestEntityTooLarge, CodeInflatedTooLarge},
		{"line over its limit", post{body: lines(padded(5000))}, http.StatusRequestEntityTooLarge, CodeLineTooLong},
		{"too many records", post{body: repeat(ok, 101)}, http.StatusRequestEntityTooLarge, CodeTooManyRecords},
		{"media type", post{body: lines(ok), ctype: "text/plain"}, http.StatusUnsupportedMediaType, CodeUnsupportedType},
		{"encoding", post{body: lines(ok), enc: "br"}, http.StatusUnsupportedMediaType, CodeUnsupportedEnc},
		{"healthz", post{method: http.MethodGet, path: "/healthz"}, http.StatusOK, ""},
		{"readyz", post{method: http.MethodGet, path: "/readyz"}, http.StatusOK, ""},
		{"openapi", post{method: http.MethodGet, path: "/openapi.json", key: "none"}, http.StatusOK, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, b := send(t, base, c.p)
			require.Equal(t, c.status, res.StatusCode, string(b))
			if c.p.path == "" {
				require.Equal(t, c.code, firstCode(t, b), string(b))
			}
		})
	}

	// The record errors name every field and code the document lists.
	long := strings.Replace(ok, `{`, `{"request_id":"`+strings.Repeat("r", 200)+`",`, 1)
	res, b := send(t, base, post{body: lines(bad, `[1]`, `{"bad":`, late, noMethod, other, long, withUnknownKeys(65), "{\"method\":\"\xff\"}")})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	var all response
	require.NoError(t, json.Unmarshal(b, &all))
	var codes []string
	for _, e := range all.Errors {
		codes = append(codes, e.Code)
	}
	for _, want := range []record.Code{record.CodeMalformedJSON, record.CodeNotObject, record.CodeInvalidUTF8, record.CodeMissing, record.CodeWrongType,
		record.CodeOutOfRange, record.CodeInvalidFormat, record.CodeTooLong, record.CodeTooManyFields, record.CodeTenantMismatch} {
		require.Contains(t, codes, string(want))
	}

	// 429: the tenant's bucket is spent by one full request.
	rated := startIntake(t, spec, &memSink{}, func(c *Config) { c.TenantRate, c.TenantBurst = 1, 100 })
	res, b = send(t, rated, post{body: repeat(ok, 100)})
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(b))
	res, b = send(t, rated, post{body: lines(ok)})
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, string(b))
	require.Equal(t, CodeRateLimited, firstCode(t, b))

	// 503 sink_unavailable, and /readyz says why.
	down := startIntake(t, spec, &memSink{fail: errors.New("broker down")}, nil)
	res, b = send(t, down, post{body: lines(ok)})
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(b))
	require.Equal(t, CodeSinkUnavailable, firstCode(t, b))
	res, b = send(t, down, post{method: http.MethodGet, path: "/readyz"})
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(b))

	// 503 overloaded: the only slot is held by a request waiting on the sink.
	sink := &blockingSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	busy := startIntake(t, spec, sink, func(c *Config) { c.MaxConcurrent = 1 })
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, busy+"/v1/logs", strings.NewReader(ok))
		req.Header.Set("Authorization", "Bearer acme-key")
		req.Header.Set("Content-Type", "application/x-ndjson")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		first <- res.StatusCode
	}()
	<-sink.entered
	res, b = send(t, busy, post{body: lines(ok)})
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(b))
	require.Equal(t, CodeOverloaded, firstCode(t, b))
	close(sink.release)
	require.Equal(t, http.StatusAccepted, <-first)

	require.Empty(t, spec.Uncovered(), "documented answers no test gave")
}

// firstCode is the request-level code of an answer, or its first record
// error's ("" for neither).
func firstCode(t *testing.T, b []byte) string {
	t.Helper()
	var r response
	require.NoError(t, json.Unmarshal(b, &r), string(b))
	if r.Code == "" && len(r.Errors) > 0 {
		return r.Errors[0].Code
	}
	return r.Code
}

// The document's record schema and error vocabulary are internal/record's
// and this package's: the same fields, types and codes.
func TestOpenAPIRecordContract(t *testing.T) {
	spec := openapitest.Load(t, OpenAPI)
	schemas := spec.Doc().Components.Schemas
	rec := schemas["Record"].Value
	var names []string
	for _, f := range record.Fields() {
		names = append(names, f.Name)
		p := rec.Properties[f.Name]
		require.NotNil(t, p, "field %s is not in the document", f.Name)
		want := map[record.Type]string{record.TypeString: "string", record.TypeIP: "string", record.TypeTimestamp: "string",
			record.TypeInt: "integer", record.TypeFloat: "number"}[f.Type]
		require.True(t, p.Value.Type.Is(want), "field %s: document says %v, internal/record %s", f.Name, p.Value.Type, f.Type)
		if f.Name != record.FieldTenant { // ingress sets it from the key
			require.Equal(t, f.Required, slices.Contains(rec.Required, f.Name), "field %s: required", f.Name)
		}
	}
	require.Len(t, rec.Properties, len(names))

	field := schemas["RecordError"].Value.Properties["field"].Value
	var enum []string
	for _, v := range field.Enum {
		enum = append(enum, v.(string))
	}
	require.Equal(t, names, enum, "RecordError.field lists the record's fields")

	codes := func(schema string) []string {
		var out []string
		for _, v := range schemas[schema].Value.Properties["code"].Value.Enum {
			out = append(out, v.(string))
		}
		return out
	}
	var request []string
	for _, s := range []string{"BadRequest", "Unauthorized", "Forbidden", "TooLarge", "UnsupportedMediaType", "RateLimited", "Unavailable"} {
		request = append(request, codes(s)...)
	}
	request = append(request, CodeMethod) // 405, described in the text
	slices.Sort(request)
	want := []string{CodeMissingKey, CodeInvalidKey, CodeKeyDisabled, CodeUnsupportedType, CodeUnsupportedEnc, CodeBodyTooLarge,
		CodeInflatedTooLarge, CodeLineTooLong, CodeTooManyRecords, CodeMalformedBody, CodeBadGzip, CodeEmptyBody, CodeRateLimited,
		CodeSinkUnavailable, CodeMethod, CodeOverloaded}
	slices.Sort(want)
	require.Equal(t, want, request, "every request-level code, each under its status")
	require.Contains(t, string(OpenAPI), `405 method_not_allowed`)
}
