package query

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// spec is the parsed OpenAPI document, and a small validator for the part
// of JSON Schema it uses (type, nullable, required, properties, items,
// enum, allOf, $ref).
type spec struct {
	doc map[string]any
}

func loadSpec(t *testing.T) *spec {
	var doc map[string]any
	require.NoError(t, json.Unmarshal(OpenAPI, &doc))
	require.Equal(t, "3.0.3", doc["openapi"])
	return &spec{doc: doc}
}

func (s *spec) resolve(schema map[string]any) map[string]any {
	for {
		ref, ok := schema["$ref"].(string)
		if !ok {
			return schema
		}
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		schema = s.doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
	}
}

func (s *spec) validate(schema map[string]any, v any, path string) error {
	schema = s.resolve(schema)
	if v == nil {
		if schema["nullable"] == true || len(schema) == 0 || schema["type"] == nil && schema["allOf"] == nil {
			return nil
		}
		return fmt.Errorf("%s: null where the schema does not allow it", path)
	}
	if all, ok := schema["allOf"].([]any); ok {
		for _, sub := range all {
			if err := s.validate(sub.(map[string]any), v, path); err != nil {
				return err
			}
		}
	}
	if enum, ok := schema["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			found = found || e == v
		}
		if !found {
			return fmt.Errorf("%s: %v not in %v", path, v, enum)
		}
	}
	switch schema["type"] {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object, got %T", path, v)
		}
		for _, r := range asSlice(schema["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				return fmt.Errorf("%s: required %q missing", path, r)
			}
		}
		props, _ := schema["properties"].(map[string]any)
		for k, pv := range obj {
			ps, ok := props[k].(map[string]any)
			if !ok {
				if props != nil {
					return fmt.Errorf("%s: %q is not in the schema", path, k)
				}
				continue
			}
			if err := s.validate(ps, pv, path+"."+k); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array, got %T", path, v)
		}
		items, _ := schema["items"].(map[string]any)
		for i, it := range arr {
			if items != nil {
				if err := s.validate(items, it, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: want a string, got %T", path, v)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: want an integer, got %v", path, v)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			return fmt.Errorf("%s: want a number, got %T", path, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want a boolean, got %T", path, v)
		}
	}
	return nil
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

var pathParam = regexp.MustCompile(`\{[a-z]+\}`)

// check validates one real response against the document: the path and
// method exist, the status is documented, and a JSON body matches its schema.
func (s *spec) check(t *testing.T, method, path string, res *http.Response, body []byte) {
	t.Helper()
	path, _, _ = strings.Cut(path, "?")
	var op map[string]any
	for p, item := range s.doc["paths"].(map[string]any) {
		re := regexp.MustCompile("^" + pathParam.ReplaceAllString(p, "[^/]+") + "$")
		if re.MatchString(path) {
			op, _ = item.(map[string]any)[strings.ToLower(method)].(map[string]any)
			break
		}
	}
	require.NotNil(t, op, "%s %s is not in the document", method, path)
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(res.StatusCode)].(map[string]any)
	require.True(t, ok, "%s %s: status %d is not documented", method, path, res.StatusCode)
	ct, _, _ := strings.Cut(res.Header.Get("Content-Type"), ";")
	content, _ := resp["content"].(map[string]any)
	media, ok := content[ct].(map[string]any)
	require.True(t, ok, "%s %s %d: content type %q is not documented", method, path, res.StatusCode, ct)
	if ct != "application/json" {
		return
	}
	var v any
	require.NoError(t, json.Unmarshal(body, &v))
	require.NoError(t, s.validate(media["schema"].(map[string]any), v, "body"), "%s %s %d: %s", method, path, res.StatusCode, body)
}

func TestOpenAPIMatchesResponses(t *testing.T) {
	sp := loadSpec(t)
	cfg := testConfig()
	cfg.MaxJobsPerTenant, cfg.MaxRunningPerTenant = 2, 1
	eng := newFakeEngine(false)
	ts := newTestService(t, cfg, eng, nil)
	call := func(method, token, path, body string, hdr ...string) ([]byte, *http.Response) {
		res, b := ts.do(t, method, token, path, body, hdr...)
		sp.check(t, method, path, res, b)
		return b, res
	}
	// The validator itself refuses a wrong body.
	require.Error(t, sp.validate(map[string]any{"$ref": "#/components/schemas/Status"}, map[string]any{"id": 1}, "x"))

	b, _ := call(http.MethodPost, "tok-a", "/v1/jobs", q1, "Idempotency-Key", "o1")
	id := jobOf(t, b).ID
	call(http.MethodPost, "tok-a", "/v1/jobs", q1, "Idempotency-Key", "o1")
	call(http.MethodPost, "tok-a", "/v1/jobs", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z"}`, "Idempotency-Key", "o1")
	ts.waitState(t, "tok-a", id, StateSucceeded)
	call(http.MethodGet, "tok-a", "/v1/jobs/"+id, "")
	call(http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results?limit=2", "")
	call(http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results?cursor=zz", "")
	call(http.MethodGet, "tok-a", "/v1/jobs/"+id+"/events", "")
	call(http.MethodGet, "tok-a", "/v1/jobs", "")
	call(http.MethodGet, "tok-a", "/v1/jobs?limit=1000", "")
	call(http.MethodPost, "tok-a", "/v1/jobs/"+id+"/cancel", "")
	call(http.MethodPost, "tok-a", "/v1/query", q1)
	call(http.MethodGet, "tok-b", "/v1/jobs/"+id, "")
	call(http.MethodGet, "", "/v1/jobs/"+id, "")
	call(http.MethodPost, "tok-a", "/v1/jobs", `{"from": 1}`)
	call(http.MethodPost, "tok-a", "/v1/jobs", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z", "sql": "SELECT 1"}`)
	call(http.MethodPost, "tok-a", "/v1/jobs", `{"tenant": "tenant-b", "from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z"}`)
	call(http.MethodGet, "", "/openapi.json", "")

	// A failed sync job and a 429.
	eng.mu.Lock()
	eng.err = &EngineError{Code: JobCodeSparkError, Err: fmt.Errorf("AnalysisException")}
	eng.mu.Unlock()
	call(http.MethodPost, "tok-b", "/v1/query", q1)
	eng.mu.Lock()
	eng.err, eng.hold = nil, true
	eng.mu.Unlock()
	call(http.MethodPost, "tok-b", "/v1/jobs", q1)
	call(http.MethodPost, "tok-b", "/v1/jobs", q1)
	_, res := call(http.MethodPost, "tok-b", "/v1/jobs", q1)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	call(http.MethodPost, "tok-b", "/v1/query?wait=10ms", strings.Replace(q1, `"status"`, `"host"`, 1))
}
