package openapitest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

const doc = `{
  "openapi": "3.0.3",
  "info": {"title": "t", "version": "1"},
  "components": {
    "schemas": {
      "Lag": {
        "type": "object",
        "required": ["group", "lag"],
        "properties": {
          "group": {"type": "string"},
          "lag": {"type": "integer", "nullable": true},
          "lag_unknown_reason": {"type": "string", "enum": ["offset_read_error"]},
          "at": {"type": "string", "format": "date-time"},
          "labels": {"type": "object", "additionalProperties": {"type": "string"}},
          "extra": {"type": "object", "additionalProperties": true, "properties": {"a": {"type": "integer"}}}
        }
      },
      "Base": {"type": "object", "properties": {"id": {"type": "string"}}},
      "Composed": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"type": "object", "properties": {"n": {"type": "integer"}}}]},
      "Meta": {"type": "object", "required": ["_meta"], "properties": {"_meta": {"type": "object", "required": ["complete"], "properties": {"complete": {"type": "boolean"}}}}},
      "Row": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
      "Error": {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}
    }
  },
  "paths": {
    "/lag/{group}": {
      "get": {
        "parameters": [{"name": "group", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {
          "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Lag"}}}},
          "429": {"description": "slow down",
            "headers": {"Retry-After": {"required": true, "schema": {"type": "integer", "minimum": 1}}},
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "204": {"description": "nothing"}
        }
      }
    },
    "/composed": {
      "get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Composed"}}}}}}
    },
    "/rows": {
      "get": {"responses": {"200": {"description": "NDJSON", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}}}
    },
    "/events": {
      "get": {"responses": {"200": {"description": "SSE", "content": {"text/event-stream": {"schema": {"type": "string"}}}}}}
    },
    "/page": {
      "get": {"responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}
    },
    "/healthz": {
      "get": {"responses": {"200": {"description": "alive", "content": {"text/plain": {"schema": {"type": "string", "enum": ["ok\n"]}}}}}}
    }
  }
}`

func exchange(method, path string, status int, ct string, hdr ...string) (*http.Request, *http.Response) {
	req := httptest.NewRequest(method, "http://svc"+path, nil)
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return req, &http.Response{StatusCode: status, Header: h, Request: req}
}

func TestValidate(t *testing.T) {
	s := Load(t, []byte(doc))
	for _, c := range []struct {
		name, path, ct, body string
		status               int
		hdr                  []string
		opts                 []Option
		err                  string // "" for a match
	}{
		{name: "known lag", path: "/lag/g", body: `{"group": "g", "lag": 3, "at": "2026-02-03T10:00:00Z", "labels": {"x": "y"}}`},
		{name: "unknown lag is null with a reason", path: "/lag/g", body: `{"group": "g", "lag": null, "lag_unknown_reason": "offset_read_error"}`},
		{name: "a string in a numeric field", path: "/lag/g", body: `{"group": "g", "lag": "unknown"}`, err: "lag"},
		{name: "a float in an integer field", path: "/lag/g", body: `{"group": "g", "lag": 1.5}`, err: "lag"},
		{name: "required field missing", path: "/lag/g", body: `{"group": "g"}`, err: "lag"},
		{name: "reason outside its enum", path: "/lag/g", body: `{"group": "g", "lag": null, "lag_unknown_reason": "dunno"}`, err: "lag_unknown_reason"},
		{name: "not a date-time", path: "/lag/g", body: `{"group": "g", "lag": 1, "at": "yesterday"}`, err: "at"},
		{name: "undocumented field", path: "/lag/g", body: `{"group": "g", "lag": 1, "lags": 2}`, err: "lags"},
		{name: "map values are checked", path: "/lag/g", body: `{"group": "g", "lag": 1, "labels": {"x": 1}}`, err: "labels"},
		{name: "an object said open stays open", path: "/lag/g", body: `{"group": "g", "lag": 1, "extra": {"a": 1, "b": 2}}`},
		{name: "not JSON", path: "/lag/g", body: `{"group":`, err: "decode"},
		{name: "charset parameter", path: "/lag/g", ct: "application/json; charset=utf-8", body: `{"group": "g", "lag": 0}`},
		{name: "undocumented status", path: "/lag/g", status: 500, body: `{"code": "x"}`, err: "status 500"},
		{name: "undocumented content type", path: "/lag/g", ct: "text/plain", body: `ok`, err: "Content-Type"},
		{name: "no content type", path: "/lag/g", ct: "none", body: `{}`, err: "Content-Type"},
		{name: "required header", path: "/lag/g", status: 429, hdr: []string{"Retry-After", "2"}, body: `{"code": "rate_limited"}`},
		{name: "required header missing", path: "/lag/g", status: 429, body: `{"code": "rate_limited"}`, err: "Retry-After"},
		{name: "header of the wrong type", path: "/lag/g", status: 429, hdr: []string{"Retry-After", "soon"}, body: `{"code": "rate_limited"}`, err: "Retry-After"},
		{name: "no body documented", path: "/lag/g", status: 204, ct: "none"},
		{name: "a body where none is documented", path: "/lag/g", status: 204, body: `{}`, err: "documents no body"},
		{name: "path not in the document", path: "/nope", body: `{}`, err: "not in the document"},
		{name: "allOf members stay open", path: "/composed", body: `{"id": "a", "n": 1}`},
		{name: "allOf members still type their fields", path: "/composed", body: `{"id": "a", "n": "1"}`, err: "n"},
		{name: "NDJSON lines", path: "/rows", ct: "application/x-ndjson", body: "{\"n\":1}\n{\"n\":2}\n{\"_meta\":{\"complete\":true}}\n",
			opts: []Option{NDJSON("Row", "Meta")}},
		{name: "NDJSON line of the wrong type", path: "/rows", ct: "application/x-ndjson", body: "{\"n\":1}\n{\"n\":\"2\"}\n{\"_meta\":{\"complete\":true}}\n",
			opts: []Option{NDJSON("Row", "Meta")}, err: "line 2"},
		{name: "NDJSON without its last line", path: "/rows", ct: "application/x-ndjson", body: "{\"n\":1}\n",
			opts: []Option{NDJSON("Row", "Meta")}, err: "line 1 (Meta)"},
		{name: "NDJSON, no line schema: media type only", path: "/rows", ct: "application/x-ndjson", body: "anything\n"},
		{name: "NDJSON where JSON is documented", path: "/lag/g", ct: "application/x-ndjson", body: "{}\n", err: "Content-Type"},
		{name: "SSE data", path: "/events", ct: "text/event-stream", body: "id: 1\nevent: state\ndata: {\"n\":1}\n\n: keep-alive\n\nid: 2\ndata: {\"n\":2}\n\n",
			opts: []Option{SSE("Row")}},
		{name: "SSE data of the wrong type", path: "/events", ct: "text/event-stream", body: "id: 1\ndata: {\"n\":1}\n\nid: 2\ndata: {\"n\":null}\n\n",
			opts: []Option{SSE("Row")}, err: "event 2"},
		{name: "a media type with no decoder", path: "/page", ct: "text/html; charset=utf-8", body: "<html></html>"},
		{name: "text body", path: "/healthz", ct: "text/plain; charset=utf-8", body: "ok\n"},
		{name: "text body off its enum", path: "/healthz", ct: "text/plain; charset=utf-8", body: "not ok\n", err: "value is not one of"},
		{name: "unknown schema named", path: "/rows", ct: "application/x-ndjson", body: "{}\n", opts: []Option{NDJSON("Nope", "")}, err: "Nope"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.status == 0 {
				c.status = http.StatusOK
			}
			if c.ct == "" {
				c.ct = "application/json"
			}
			if c.ct == "none" {
				c.ct = ""
			}
			req, res := exchange(http.MethodGet, c.path, c.status, c.ct, c.hdr...)
			err := s.Validate(req, res, []byte(c.body), c.opts...)
			if c.err == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), c.err)
		})
	}
}

func TestLoadRefusesBadDocuments(t *testing.T) {
	for name, d := range map[string]string{
		"not JSON":        `{"openapi":`,
		"another version": strings.Replace(doc, `"3.0.3"`, `"3.1.0"`, 1),
		"dangling $ref":   strings.Replace(doc, `"#/components/schemas/Lag"`, `"#/components/schemas/Lagg"`, 1),
		"bad type":        strings.Replace(doc, `{"type": "boolean"}`, `{"type": "bool"}`, 1),
		"no responses":    strings.Replace(doc, `"get": {"responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}`, `"get": {}`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load([]byte(d))
			require.Error(t, err)
		})
	}
}

// errorsTB records what Handler reports.
type errorsTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (e *errorsTB) Helper() {}
func (e *errorsTB) Errorf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

func TestHandlerChecksEveryExchange(t *testing.T) {
	s := Load(t, []byte(doc))
	rec := &errorsTB{TB: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lag/{group}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.PathValue("group") == "drift" {
			fmt.Fprint(w, `{"group": "drift", "lag": "unknown"}`)
			return
		}
		fmt.Fprint(w, `{"group": "g", "lag": null}`)
	})
	mux.HandleFunc("GET /rows", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"n": 1}`)
		w.(http.Flusher).Flush() // streams still stream through the checker
		fmt.Fprintln(w, `{"_meta": {"complete": true}}`)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok") // no Content-Type: net/http sniffs text/plain, and so does the checker
	})
	srv := httptest.NewServer(s.Handler(rec, mux, NDJSON("Row", "Meta")))
	defer srv.Close()
	for _, p := range []string{"/lag/g", "/rows", "/lag/drift", "/healthz"} {
		res, err := srv.Client().Get(srv.URL + p)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	srv.Close() // waits for the handlers, and so for their checks
	require.Len(t, rec.errs, 1, "%q", rec.errs)
	require.Contains(t, rec.errs[0], "/lag/drift")
	require.Contains(t, rec.errs[0], "lag")

	require.Equal(t, []string{
		"GET /composed 200", "GET /events 200", "GET /lag/{group} 204", "GET /lag/{group} 429", "GET /page 200",
	}, s.Uncovered())
}
