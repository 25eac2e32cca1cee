package query

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/auth"
	"github.com/hourglass-io/hourglass/internal/catalog/archivequery"
)

// kafka-go's default transport (stacktest's topic helpers) keeps its
// connection pool after a test, as in services/archiver.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"))
}

// fakeEngine is a controllable Engine: with hold set, each Run waits for a
// release (or its ctx, which it records as an interrupt).
type fakeEngine struct {
	mu          sync.Mutex
	started     []string
	tenants     []string
	interrupted map[string]bool
	hold        bool
	release     chan struct{}
	startedCh   chan string
	err         error
	rows        int
	fs          archive.FS // where a written result goes (set by newTestService)
}

func newFakeEngine(hold bool) *fakeEngine {
	return &fakeEngine{interrupted: map[string]bool{}, hold: hold, release: make(chan struct{}), startedCh: make(chan string, 100), rows: 5}
}

func (f *fakeEngine) Run(ctx context.Context, id, tenant string, plan *archivequery.Plan, out string) (*Result, error) {
	f.mu.Lock()
	f.started = append(f.started, id)
	f.tenants = append(f.tenants, tenant)
	hold, ferr, n := f.hold, f.err, f.rows
	f.mu.Unlock()
	f.startedCh <- id
	if hold {
		select {
		case <-f.release:
		case <-ctx.Done():
			f.mu.Lock()
			f.interrupted[id] = true
			f.mu.Unlock()
			return nil, &EngineError{Code: JobCodeSparkError, Err: fmt.Errorf("operation interrupted: %w", ctx.Err())}
		}
	}
	if ferr != nil {
		return nil, ferr
	}
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{"tenant": tenant, "i": i, "job": id}
	}
	if out != "" {
		// As Spark does: part files in row order, plus files a reader skips.
		files := map[string][]map[string]any{"part-00000.json": rows[:n/2], "part-00001.json": rows[n/2:], "_SUCCESS": nil, ".part-00000.json.crc": nil}
		for name, rs := range files {
			var b []byte
			for _, r := range rs {
				line, _ := json.Marshal(r)
				b = append(append(b, line...), '\n')
			}
			if len(b) == 0 {
				b = []byte("x") // never read
			}
			if err := archive.WriteFile(ctx, f.fs, out+"/"+name, b); err != nil {
				return nil, err
			}
		}
		return &Result{Columns: plan.Columns, Written: true, Count: n}, nil
	}
	return &Result{Columns: plan.Columns, Rows: rows}, nil
}

func (f *fakeEngine) wasInterrupted(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.interrupted[id]
}

func (f *fakeEngine) startOrder() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.started...)
}

// fakePublisher records published events.
type fakePublisher struct {
	mu     sync.Mutex
	events []Event
}

func (p *fakePublisher) Publish(_ context.Context, evs []Event) error {
	p.mu.Lock()
	p.events = append(p.events, evs...)
	p.mu.Unlock()
	return nil
}

func (p *fakePublisher) of(job string) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Event
	for _, e := range p.events {
		if e.JobID == job {
			out = append(out, e)
		}
	}
	return out
}

func testTokens(t testing.TB) *auth.Tokens {
	tok, err := auth.Parse([]byte(fmt.Sprintf(`
tokens:
  - {name: cust-a, sha256: %s, role: customer, tenants: [tenant-a]}
  - {name: cust-b, sha256: %s, role: customer, tenants: [tenant-b]}
  - {name: dev, sha256: %s, role: developer, tenants: [tenant-a, tenant-b]}
  - {name: sre, sha256: %s, role: admin}
`, auth.Digest("tok-a"), auth.Digest("tok-b"), auth.Digest("tok-dev"), auth.Digest("tok-admin"))))
	require.NoError(t, err)
	return tok
}

type testService struct {
	*httptest.Server
	s      *Server
	engine *fakeEngine
	pub    *fakePublisher
	fs     archive.FS
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.SyncDefault = 5 * time.Second
	cfg.DrainTimeout = 0
	return cfg
}

func newTestService(t *testing.T, cfg Config, engine *fakeEngine, fsys archive.FS) *testService {
	t.Helper()
	if fsys == nil {
		var err error
		fsys, err = archive.NewLocal(t.TempDir())
		require.NoError(t, err)
	}
	pub := &fakePublisher{}
	engine.fs = fsys
	s, err := New(cfg, engine, NewStore(fsys, ""), pub, testTokens(t), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	ts := &testService{Server: httptest.NewServer(s.Handler()), s: s, engine: engine, pub: pub, fs: fsys}
	t.Cleanup(func() {
		close(engine.release) // lets held runs end
		ts.Close()
		require.NoError(t, s.Shutdown(context.Background(), nil))
	})
	return ts
}

func (ts *testService) do(t *testing.T, method, token, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

const q1 = `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T12:00:00Z", "aggregations": [{"name": "n", "fn": "count"}], "group_by": ["status"]}`

func jobOf(t *testing.T, b []byte) Status {
	t.Helper()
	var a jobAnswer
	require.NoError(t, json.Unmarshal(b, &a), string(b))
	require.NotEmpty(t, a.Job.ID, string(b))
	return a.Job
}

func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct {
		Error apiError `json:"error"`
	}
	require.NoError(t, json.Unmarshal(b, &e), string(b))
	return e.Error.Code
}

func (ts *testService) waitState(t *testing.T, token, id string, want State) Status {
	t.Helper()
	var st Status
	require.Eventually(t, func() bool {
		res, b := ts.do(t, http.MethodGet, token, "/v1/jobs/"+id, "")
		if res.StatusCode != http.StatusOK {
			return false
		}
		st = jobOf(t, b)
		return st.State == want
	}, 5*time.Second, 5*time.Millisecond, "job %s never %s", id, want)
	return st
}

func TestSubmitStatusResultsPages(t *testing.T) {
	ts := newTestService(t, testConfig(), newFakeEngine(false), nil)
	res, b := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(b))
	st := jobOf(t, b)
	require.Equal(t, "/v1/jobs/"+st.ID, res.Header.Get("Location"))
	require.Equal(t, "tenant-a", st.Tenant, "a customer's one tenant is implied")
	st = ts.waitState(t, "tok-a", st.ID, StateSucceeded)
	require.Equal(t, 5, st.Rows)
	require.NotNil(t, st.RunMS)
	require.Equal(t, []archivequery.Column{{Name: "status", Type: "int"}, {Name: "n", Type: "int"}}, st.Columns)

	got := ts.allPages(t, "tok-a", st.ID, 2, 5)
	require.Len(t, got, 5)
	for i, row := range got {
		require.Equal(t, float64(i), row["i"], "rows in order, none twice")
		require.Equal(t, "tenant-a", row["tenant"])
	}
}

// allPages reads a job's results page by page (size rows each, at most
// maxPages pages) and checks each page's _meta.
func (ts *testService) allPages(t *testing.T, token, id string, size, maxPages int) []map[string]any {
	t.Helper()
	var got []map[string]any
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, maxPages)
		path := "/v1/jobs/" + id + "/results?limit=" + strconv.Itoa(size)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		res, b := ts.do(t, http.MethodGet, token, path, "")
		require.Equal(t, http.StatusOK, res.StatusCode, string(b))
		require.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var meta struct {
			Meta resultsMeta `json:"_meta"`
		}
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &meta))
		for _, l := range lines[:len(lines)-1] {
			var row map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &row))
			got = append(got, row)
		}
		require.Equal(t, len(lines)-1, meta.Meta.Rows)
		require.LessOrEqual(t, meta.Meta.Rows, size)
		if meta.Meta.Complete {
			require.Empty(t, meta.Meta.NextCursor)
			return got
		}
		cursor = meta.Meta.NextCursor
	}
}

// A job whose limit is over inline-rows has its rows written by the engine
// (Spark) into the archive's file system; pages are read from the part
// files in order, a cursor is a position in them, and they expire.
func TestLargeResultsWrittenByEngine(t *testing.T) {
	cfg := testConfig()
	cfg.InlineRows = 4
	eng := newFakeEngine(false)
	eng.rows = 25
	ts := newTestService(t, cfg, eng, nil)
	const big = `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T12:00:00Z", "limit": 100}`

	// A synchronous answer carries at most inline-rows rows.
	res, b := ts.do(t, http.MethodPost, "tok-a", "/v1/query", big)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, string(b))
	require.Equal(t, archivequery.CodeTooLarge, errCode(t, b))

	_, b = ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", big)
	id := jobOf(t, b).ID
	st := ts.waitState(t, "tok-a", id, StateSucceeded)
	require.Equal(t, 25, st.Rows)
	j, _ := ts.s.mgr.Lookup(id)
	require.True(t, j.ResultsWritten)
	_, err := ts.fs.Stat(context.Background(), "_query/results/"+id+".ndjson")
	require.True(t, archive.IsNotExist(err), "nothing collected by the service")

	for _, size := range []int{1, 3, 12, 13, 25, 100} { // pages that end inside, at the end of, and across part files
		got := ts.allPages(t, "tok-a", id, size, 30)
		require.Len(t, got, 25, "page size %d", size)
		for i, row := range got {
			require.Equal(t, float64(i), row["i"], "page size %d: rows in order, none twice", size)
		}
	}

	// Cursors that are not the start of a row of this job: 400, never rows.
	for _, c := range []cursor{{Job: id, Part: 0, Byte: 5}, {Job: id, Part: 1, Byte: 1 << 20}, {Job: id, Part: 3}, {Job: id, Part: 2, Byte: 1}} {
		res, b := ts.do(t, http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results?cursor="+encodeCursor(c), "")
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%+v: %s", c, b)
		require.Equal(t, CodeBadCursor, errCode(t, b))
	}
	res, b = ts.do(t, http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results?cursor="+encodeCursor(cursor{Job: id, Part: 2}), "")
	require.Equal(t, http.StatusOK, res.StatusCode, "the end is a position: %s", b)
	require.Contains(t, string(b), `"complete":true`)

	ts.s.mgr.now = func() time.Time { return time.Now().Add(cfg.ResultTTL + time.Minute) }
	ts.s.mgr.expire(context.Background())
	_, err = ts.fs.Stat(context.Background(), "_query/results/"+id)
	require.True(t, archive.IsNotExist(err), "the result directory is gone")
	res, _ = ts.do(t, http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results", "")
	require.Equal(t, http.StatusGone, res.StatusCode)
}

func TestAuthAndRefusals(t *testing.T) {
	ts := newTestService(t, testConfig(), newFakeEngine(false), nil)
	cases := []struct {
		name, token, path, body string
		status                  int
		code                    string
	}{
		{"no token", "", "/v1/jobs", q1, 401, CodeMissingToken},
		{"bad token", "tok-x", "/v1/jobs", q1, 401, CodeInvalidToken},
		{"other tenant", "tok-a", "/v1/jobs", `{"tenant": "tenant-b", "from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z"}`, 403, CodeTenantForbidden},
		{"dev without tenant", "tok-dev", "/v1/jobs", q1, 400, CodeTenantRequired},
		{"free sql customer", "tok-a", "/v1/jobs", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z", "sql": "SELECT * FROM archive"}`, 403, archivequery.CodeForbidden},
		{"injected field", "tok-a", "/v1/jobs", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z", "filters": [{"field": "tenant='tenant-b' OR 1=1 --", "op": "eq", "value": "x"}]}`, 400, archivequery.CodeUnknownField},
		{"malformed", "tok-a", "/v1/jobs", `{"from":`, 400, archivequery.CodeMalformed},
		{"body over", "tok-a", "/v1/jobs", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z", "sql": "` + strings.Repeat("x", 300<<10) + `"}`, 400, archivequery.CodeTooLarge},
		{"unknown job", "tok-a", "/v1/jobs/0123456789abcdef0123456789abcdef", "", 404, CodeNotFound},
		{"bad job id", "tok-a", "/v1/jobs/..%2F..%2Fetc", "", 404, CodeNotFound},
		{"unknown path", "tok-a", "/v2/x", "", 404, CodeNotFound},
		{"bad wait", "tok-a", "/v1/query?wait=soon", q1, 400, CodeBadParam},
		{"bad list limit", "tok-a", "/v1/jobs?limit=0", "", 400, CodeBadParam},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := http.MethodPost
			if c.body == "" {
				method = http.MethodGet
			}
			res, b := ts.do(t, method, c.token, c.path, c.body)
			require.Equal(t, c.status, res.StatusCode, string(b))
			require.Equal(t, c.code, errCode(t, b))
		})
	}
	res, b := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1, "Idempotency-Key", strings.Repeat("k", maxIdempotencyKey+1))
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, CodeBadParam, errCode(t, b))
	res, _ = ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1, "Idempotency-Key", strings.Repeat("k", maxIdempotencyKey))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "a key at the bound")
}

func TestIdempotentSubmit(t *testing.T) {
	ts := newTestService(t, testConfig(), newFakeEngine(false), nil)
	res, b := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	first := jobOf(t, b)
	res, b = ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, first.ID, jobOf(t, b).ID, "same key, same job")
	res, b = ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", strings.Replace(q1, "status", "host", 1), "Idempotency-Key", "k1")
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Equal(t, CodeIdempotencyConflict, errCode(t, b))
	res, b = ts.do(t, http.MethodPost, "tok-b", "/v1/jobs", q1, "Idempotency-Key", "k1")
	require.Equal(t, http.StatusAccepted, res.StatusCode, "another caller's key space")
	require.NotEqual(t, first.ID, jobOf(t, b).ID)
	res, b = ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	require.NotEqual(t, first.ID, jobOf(t, b).ID, "no key, a new job")
}

func TestIsolationOfJobs(t *testing.T) {
	ts := newTestService(t, testConfig(), newFakeEngine(false), nil)
	_, b := ts.do(t, http.MethodPost, "tok-b", "/v1/jobs", q1)
	jb := jobOf(t, b)
	ts.waitState(t, "tok-b", jb.ID, StateSucceeded)
	_, b = ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	ja := jobOf(t, b)
	ts.waitState(t, "tok-a", ja.ID, StateSucceeded)

	for _, path := range []string{"/v1/jobs/" + jb.ID, "/v1/jobs/" + jb.ID + "/results", "/v1/jobs/" + jb.ID + "/events"} {
		res, b := ts.do(t, http.MethodGet, "tok-a", path, "")
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
		require.Equal(t, CodeNotFound, errCode(t, b))
		require.NotContains(t, string(b), "tenant-b")
	}
	res, _ := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs/"+jb.ID+"/cancel", "")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	// A cursor of B's results on A's job is refused.
	cur := encodeCursor(cursor{Job: jb.ID, Offset: 1})
	res, b = ts.do(t, http.MethodGet, "tok-a", "/v1/jobs/"+ja.ID+"/results?cursor="+cur, "")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, CodeBadCursor, errCode(t, b))
	// A's list holds A's jobs only.
	res, b = ts.do(t, http.MethodGet, "tok-a", "/v1/jobs", "")
	require.Equal(t, http.StatusOK, res.StatusCode)
	var list struct{ Jobs []Status }
	require.NoError(t, json.Unmarshal(b, &list))
	require.Len(t, list.Jobs, 1)
	require.Equal(t, ja.ID, list.Jobs[0].ID)
	// The engine only ever ran each job for its own tenant.
	require.ElementsMatch(t, []string{"tenant-b", "tenant-a"}, ts.engine.tenants)
	// An admin sees B's job.
	res, _ = ts.do(t, http.MethodGet, "tok-admin", "/v1/jobs/"+jb.ID, "")
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func TestQuotasAndFairOrder(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRunning, cfg.MaxRunningPerTenant, cfg.MaxJobsPerTenant, cfg.MaxJobs = 1, 1, 4, 10
	eng := newFakeEngine(true)
	ts := newTestService(t, cfg, eng, nil)
	submit := func(token string) (int, string, http.Header) {
		res, b := ts.do(t, http.MethodPost, token, "/v1/jobs", q1)
		if res.StatusCode != http.StatusAccepted {
			return res.StatusCode, errCode(t, b), res.Header
		}
		return res.StatusCode, jobOf(t, b).ID, res.Header
	}
	_, a1, _ := submit("tok-a")
	require.Equal(t, a1, <-eng.startedCh)
	var as []string
	for range 3 {
		code, id, _ := submit("tok-a")
		require.Equal(t, http.StatusAccepted, code)
		as = append(as, id)
	}
	code, reason, hdr := submit("tok-a")
	require.Equal(t, http.StatusTooManyRequests, code, "the fifth job of tenant-a is over its limit of 4")
	require.Equal(t, CodeTooManyJobs, reason)
	require.Equal(t, "5", hdr.Get("Retry-After"))
	code, b1, _ := submit("tok-b")
	require.Equal(t, http.StatusAccepted, code, "another tenant still gets through")

	want := []string{a1, as[0], b1, as[1], as[2]}
	for i := 1; i < len(want); i++ {
		eng.release <- struct{}{}
		require.Equal(t, want[i], <-eng.startedCh, "start %d", i)
	}
	eng.release <- struct{}{}
	require.Equal(t, want, eng.startOrder(), "tenants take turns")
}

func TestCancelInterruptsRunningJob(t *testing.T) {
	eng := newFakeEngine(true)
	ts := newTestService(t, testConfig(), eng, nil)
	_, b := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	id := jobOf(t, b).ID
	<-eng.startedCh
	res, _ := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs/"+id+"/cancel", "")
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	st := ts.waitState(t, "tok-a", id, StateCancelled)
	require.Equal(t, JobCodeCancelled, st.Error.Code)
	require.True(t, eng.wasInterrupted(id), "the engine's operation was interrupted")
	res, b = ts.do(t, http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results", "")
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Equal(t, CodeJobNotSucceeded, errCode(t, b))
}

func TestCancelQueuedJob(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRunning = 1
	eng := newFakeEngine(true)
	ts := newTestService(t, cfg, eng, nil)
	_, b := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	first := jobOf(t, b).ID
	<-eng.startedCh
	_, b = ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	queued := jobOf(t, b).ID
	ts.do(t, http.MethodPost, "tok-a", "/v1/jobs/"+queued+"/cancel", "")
	ts.waitState(t, "tok-a", queued, StateCancelled)
	eng.release <- struct{}{}
	ts.waitState(t, "tok-a", first, StateSucceeded)
	require.Equal(t, []string{first}, eng.startOrder(), "a cancelled queued job never runs")
}

func TestEngineFailure(t *testing.T) {
	eng := newFakeEngine(false)
	eng.err = &EngineError{Code: JobCodeSparkUnavailable, Err: errors.New("rpc error: code = Unavailable")}
	ts := newTestService(t, testConfig(), eng, nil)
	_, b := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	st := ts.waitState(t, "tok-a", jobOf(t, b).ID, StateFailed)
	require.Equal(t, JobCodeSparkUnavailable, st.Error.Code)
	require.Contains(t, st.Error.Message, "Unavailable")
	// Through the sync API it is a 503 with the job.
	res, b := ts.do(t, http.MethodPost, "tok-a", "/v1/query", q1)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, string(b))
	require.Equal(t, JobCodeSparkUnavailable, errCode(t, b))
}

func TestSyncQuery(t *testing.T) {
	t.Run("within budget", func(t *testing.T) {
		ts := newTestService(t, testConfig(), newFakeEngine(false), nil)
		res, b := ts.do(t, http.MethodPost, "tok-a", "/v1/query?wait=5s", q1)
		require.Equal(t, http.StatusOK, res.StatusCode, string(b))
		var a syncAnswer
		require.NoError(t, json.Unmarshal(b, &a))
		require.Equal(t, StateSucceeded, a.Job.State)
		require.Len(t, a.Rows, 5)
	})
	t.Run("slow job gets 202 then finishes", func(t *testing.T) {
		eng := newFakeEngine(true)
		ts := newTestService(t, testConfig(), eng, nil)
		res, b := ts.do(t, http.MethodPost, "tok-a", "/v1/query?wait=50ms", q1)
		require.Equal(t, http.StatusAccepted, res.StatusCode, string(b))
		st := jobOf(t, b)
		require.Equal(t, "/v1/jobs/"+st.ID, res.Header.Get("Location"))
		eng.release <- struct{}{}
		ts.waitState(t, "tok-a", st.ID, StateSucceeded)
		require.False(t, eng.wasInterrupted(st.ID))
	})
	t.Run("disconnect interrupts", func(t *testing.T) {
		eng := newFakeEngine(true)
		ts := newTestService(t, testConfig(), eng, nil)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/query?wait=10s", strings.NewReader(q1))
		req.Header.Set("Authorization", "Bearer tok-a")
		done := make(chan error, 1)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		id := <-eng.startedCh
		cancel()
		require.Error(t, <-done)
		st := ts.waitState(t, "tok-a", id, StateCancelled)
		require.Equal(t, JobCodeClientGone, st.Error.Code)
		require.True(t, eng.wasInterrupted(id))
		require.Eventually(t, func() bool { return ts.s.waiting.len() == 0 }, time.Second, 5*time.Millisecond)
	})
}

// readSSE reads an event stream to its end.
func readSSE(t *testing.T, r io.Reader) []Event {
	var out []Event
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ev Event
			require.NoError(t, json.Unmarshal([]byte(data), &ev))
			out = append(out, ev)
		}
	}
	return out
}

func TestEventsSSEAndPublisher(t *testing.T) {
	eng := newFakeEngine(true)
	ts := newTestService(t, testConfig(), eng, nil)
	_, b := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	id := jobOf(t, b).ID
	<-eng.startedCh
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/jobs/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer tok-a")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	got := make(chan []Event, 1)
	go func() { got <- readSSE(t, res.Body) }()
	eng.release <- struct{}{}
	evs := <-got
	states := func(evs []Event) (out []string) {
		for i, e := range evs {
			require.Equal(t, i+1, e.Seq)
			require.Equal(t, id, e.JobID)
			out = append(out, string(e.State))
		}
		return out
	}
	want := []string{"queued", "running", "succeeded"}
	require.Equal(t, want, states(evs), "every transition once, in order")
	require.Equal(t, 5, evs[2].Rows)
	require.Eventually(t, func() bool { return len(ts.pub.of(id)) == 3 }, 2*time.Second, 5*time.Millisecond)
	require.Equal(t, want, states(ts.pub.of(id)), "the same on the publisher")

	// Resuming after seq 2 gives only the last one.
	req.Header.Set("Last-Event-ID", "2")
	res2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res2.Body.Close()
	require.Equal(t, []string{"succeeded"}, states2(readSSE(t, res2.Body)))
}

func states2(evs []Event) (out []string) {
	for _, e := range evs {
		out = append(out, string(e.State))
	}
	return out
}

func TestRestartKeepsHistoryAndFailsRunning(t *testing.T) {
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	store := NewStore(fsys, "")
	now := time.Now().UTC()
	mk := func(state State) *Job {
		q, err := archivequery.Decode([]byte(q1), archivequery.DefaultLimits())
		require.NoError(t, err)
		j := &Job{ID: newID(), Tenant: "tenant-a", Owner: "cust-a", Query: q, State: state, Created: now,
			Events: []Event{{Seq: 1, State: StateQueued, Time: now}}}
		if state == StateRunning {
			j.Started = &now
			j.Events = append(j.Events, Event{Seq: 2, State: StateRunning, Time: now})
		}
		require.NoError(t, store.Put(context.Background(), j))
		return j
	}
	running, queued, done := mk(StateRunning), mk(StateQueued), mk(StateSucceeded)
	ts := newTestService(t, testConfig(), newFakeEngine(false), fsys)
	st := ts.waitState(t, "tok-a", running.ID, StateFailed)
	require.Equal(t, JobCodeServiceRestarted, st.Error.Code, "never left running")
	ts.waitState(t, "tok-a", queued.ID, StateSucceeded)
	ts.waitState(t, "tok-a", done.ID, StateSucceeded)
	// The failure is durable too.
	jobs, _, err := store.Load(context.Background())
	require.NoError(t, err)
	for _, j := range jobs {
		if j.ID == running.ID {
			require.Equal(t, StateFailed, j.State)
			require.Equal(t, 3, len(j.Events))
		}
	}
}

func TestResultsExpire(t *testing.T) {
	ts := newTestService(t, testConfig(), newFakeEngine(false), nil)
	_, b := ts.do(t, http.MethodPost, "tok-a", "/v1/jobs", q1)
	id := jobOf(t, b).ID
	ts.waitState(t, "tok-a", id, StateSucceeded)
	ts.s.mgr.now = func() time.Time { return time.Now().Add(testConfig().ResultTTL + time.Minute) }
	ts.s.mgr.expire(context.Background())
	res, b := ts.do(t, http.MethodGet, "tok-a", "/v1/jobs/"+id+"/results", "")
	require.Equal(t, http.StatusGone, res.StatusCode)
	require.Equal(t, CodeResultsExpired, errCode(t, b))
	_, err := ts.fs.Stat(context.Background(), "_query/results/"+id+".ndjson")
	require.True(t, archive.IsNotExist(err), "the file is gone")
	ts.s.mgr.now = func() time.Time { return time.Now().Add(testConfig().JobTTL + time.Minute) }
	ts.s.mgr.expire(context.Background())
	res, _ = ts.do(t, http.MethodGet, "tok-a", "/v1/jobs/"+id, "")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestWaitMapSweep(t *testing.T) {
	w := newWaitMap()
	t0 := time.Now()
	var ended []string
	w.add("a", t0, func() { ended = append(ended, "a") })
	id := w.add("b", t0.Add(time.Minute), func() { ended = append(ended, "b") })
	require.Equal(t, 0, w.sweep(t0.Add(time.Second), time.Second), "at deadline+grace: kept")
	require.Equal(t, 1, w.sweep(t0.Add(2*time.Second), time.Second))
	require.Equal(t, []string{"a"}, ended)
	w.remove(id)
	require.Equal(t, 0, w.len())
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.Listen, c.SyncMax, c.MaxRunningPerTenant, c.PageRows = "", time.Millisecond, 0, 0
	err := c.Validate()
	for _, s := range []string{"listen", "sync-default", "max-running-per-tenant", "page-rows"} {
		require.ErrorContains(t, err, s)
	}
}

// failResults is a file system whose result files cannot be written.
type failResults struct{ archive.FS }

func (f failResults) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	if strings.Contains(name, "/results/") {
		return nil, errors.New("disk full")
	}
	return f.FS.Create(ctx, name)
}

// A synchronous job answers from memory, then stores its rows: the results
// endpoint serves them once stored; a failed write leaves them gone (410),
// the answer already given.
func TestSyncRowsStoredAfterTheAnswer(t *testing.T) {
	ts := newTestService(t, testConfig(), newFakeEngine(false), nil)
	res, b := ts.do(t, http.MethodPost, "tok-a", "/v1/query", q1)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	var a syncAnswer
	require.NoError(t, json.Unmarshal(b, &a))
	require.Len(t, a.Rows, 5)
	require.Len(t, ts.allPages(t, "tok-a", a.Job.ID, 2, 5), 5, "the stored rows")

	local, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	ts = newTestService(t, testConfig(), newFakeEngine(false), failResults{local})
	res, b = ts.do(t, http.MethodPost, "tok-a", "/v1/query", q1)
	require.Equal(t, http.StatusOK, res.StatusCode, "the caller gets its rows: %s", b)
	require.NoError(t, json.Unmarshal(b, &a))
	require.Len(t, a.Rows, 5)
	res, b = ts.do(t, http.MethodGet, "tok-a", "/v1/jobs/"+a.Job.ID+"/results", "")
	require.Equal(t, http.StatusGone, res.StatusCode, string(b))
	require.Equal(t, CodeResultsExpired, errCode(t, b))
}
