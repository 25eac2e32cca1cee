package query

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/openapitest"
)

func TestOpenAPIMatchesResponses(t *testing.T) {
	spec := openapitest.Load(t, OpenAPI)
	cfg := testConfig()
	cfg.MaxJobsPerTenant, cfg.MaxRunningPerTenant = 2, 1
	eng := newFakeEngine(false)
	ts := newTestService(t, cfg, eng, nil)
	streams := []openapitest.Option{openapitest.NDJSON("ResultRow", "ResultsMetaLine"), openapitest.SSE("Event")}
	call := func(want int, method, token, path, body string, hdr ...string) []byte {
		t.Helper()
		res, b := ts.do(t, method, token, path, body, hdr...)
		require.Equal(t, want, res.StatusCode, "%s %s: %s", method, path, b)
		spec.Check(t, res.Request, res, b, streams...)
		return b
	}

	// The checker itself refuses a wrong body: a status whose id is a number.
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/jobs/0123456789abcdef0123456789abcdef", nil)
	require.NoError(t, err)
	wrong := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(""))}
	require.Error(t, spec.Validate(req, wrong, []byte(`{"job": {"id": 1}}`)))

	id := jobOf(t, call(http.StatusAccepted, http.MethodPost, "tok-a", "/v1/jobs", q1, "Idempotency-Key", "o1")).ID
	call(http.StatusOK, http.MethodPost, "tok-a", "/v1/jobs", q1, "Idempotency-Key", "o1")
	call(http.StatusConflict, http.MethodPost, "tok-a", "/v1/jobs", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z"}`, "Idempotency-Key", "o1")
	ts.waitState(t, "tok-a", id, StateSucceeded)
	call(http.StatusOK, http.MethodGet, "tok-a", "/v1/jobs/"+id, "")
	call(http.StatusOK, http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results?limit=2", "")
	call(http.StatusBadRequest, http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results?cursor=zz", "")
	call(http.StatusOK, http.MethodGet, "tok-a", "/v1/jobs/"+id+"/events", "")
	call(http.StatusOK, http.MethodGet, "tok-a", "/v1/jobs", "")
	call(http.StatusBadRequest, http.MethodGet, "tok-a", "/v1/jobs?limit=1000", "")
	call(http.StatusAccepted, http.MethodPost, "tok-a", "/v1/jobs/"+id+"/cancel", "")
	call(http.StatusOK, http.MethodPost, "tok-a", "/v1/query", q1)
	call(http.StatusNotFound, http.MethodGet, "tok-b", "/v1/jobs/"+id, "")
	call(http.StatusUnauthorized, http.MethodGet, "", "/v1/jobs/"+id, "")
	call(http.StatusBadRequest, http.MethodPost, "tok-a", "/v1/jobs", `{"from": 1}`)
	call(http.StatusForbidden, http.MethodPost, "tok-a", "/v1/jobs", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z", "sql": "SELECT 1"}`)
	call(http.StatusForbidden, http.MethodPost, "tok-a", "/v1/jobs", `{"tenant": "tenant-b", "from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z"}`)
	call(http.StatusOK, http.MethodGet, "", "/openapi.json", "")

	// A failed sync job and a 429.
	eng.mu.Lock()
	eng.err = &EngineError{Code: JobCodeSparkError, Err: fmt.Errorf("AnalysisException")}
	eng.mu.Unlock()
	call(http.StatusUnprocessableEntity, http.MethodPost, "tok-b", "/v1/query", q1)
	eng.mu.Lock()
	eng.err, eng.hold = nil, true
	eng.mu.Unlock()
	call(http.StatusAccepted, http.MethodPost, "tok-b", "/v1/jobs", q1)
	call(http.StatusAccepted, http.MethodPost, "tok-b", "/v1/jobs", q1)
	call(http.StatusTooManyRequests, http.MethodPost, "tok-b", "/v1/jobs", q1)
	call(http.StatusTooManyRequests, http.MethodPost, "tok-b", "/v1/query?wait=10ms", strings.Replace(q1, `"status"`, `"host"`, 1))
	// Another tenant has room: its synchronous query outlives the wait.
	call(http.StatusAccepted, http.MethodPost, "tok-a", "/v1/query?wait=10ms", strings.Replace(q1, `"status"`, `"host"`, 1))

	t.Logf("documented responses not exercised here: %v", spec.Uncovered())
}
