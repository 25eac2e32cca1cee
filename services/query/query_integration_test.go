//go:build integration

package query

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/catalog/archivequery"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/poolctl"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/sparkconnect"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

var it0 = time.Date(2026, 2, 3, 10, 0, 0, 0, time.UTC)

// itEnv is an archive on the stack's HDFS, the real Spark Connect pool and
// a Kafka topic for events, with the service in front.
type itEnv struct {
	*testService
	recs   []record.Record
	topic  string
	engine *SparkEngine
}

func newITEnv(t *testing.T, opts ...func(*Config)) *itEnv {
	stacktest.SharePool(t)
	return openITEnv(t, opts...)
}

// openITEnv builds the environment without holding the pool: the caller
// holds it (shared, or alone to kill its servers).
func openITEnv(t *testing.T, opts ...func(*Config)) *itEnv {
	namenode := stacktest.Get(t, "HOURGLASS_HDFS_NAMENODE")
	pool := stacktest.Get(t, "HOURGLASS_SPARK_CONNECT_POOL")
	brokers := stacktest.Brokers(t)
	name := stacktest.UniqueName("query-it")
	root := "/hourglass-test/" + name
	fsys, err := archive.NewHDFS(archive.HDFSConfig{NameNodes: []string{namenode}, User: "hourglass", Root: root, IOTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = fsys.Close()
		c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{namenode}, User: "hourglass"})
		if err == nil {
			_ = c.RemoveAll(root)
			_ = c.Close()
		}
	})
	recs := writeITArchive(t, fsys)

	log := slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
	scfg := sparkconnect.DefaultConfig()
	scfg.URL = pool
	client, err := sparkconnect.New(scfg, log)
	require.NoError(t, err)
	eng, err := NewSparkEngine(client, fsys, "hdfs://"+namenode+root, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close(context.Background()) })

	topic := "hourglass.query.events." + name
	stacktest.CreateTopic(t, brokers, topic, 3)
	pub := NewKafkaPublisher(strings.Split(brokers, ","), topic)
	t.Cleanup(func() { _ = pub.Close() })

	cfg := DefaultConfig()
	cfg.DrainTimeout = 0
	cfg.SyncDefault, cfg.SyncMax = 60*time.Second, 120*time.Second
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg, eng, NewStore(fsys, ""), pub, testTokens(t), log, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, s.Shutdown(context.Background(), nil))
	})
	return &itEnv{testService: &testService{Server: srv, s: s, fs: fsys}, recs: recs, topic: topic, engine: eng}
}

// testWriter sends the service's logs to the test's log (shown when it
// fails, or with -v).
// Lines written after the test's cleanups began are dropped (t.Log would
// panic once the test completed).
type testWriter struct {
	t    *testing.T
	done atomic.Bool
}

func newTestWriter(t *testing.T) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// writeITArchive writes generated records of tenant-a and tenant-b over
// three hours (one part file per tenant-hour), plus records of tenant-b
// whose values look like SQL, and returns them all.
func writeITArchive(t *testing.T, fsys archive.FS) []record.Record {
	g := gen.New(gen.Config{Seed: 7, Tenants: 2, Start: it0, Rate: 1500.0 / (3 * 3600)})
	rename := map[string]string{"tenant-01": "tenant-a", "tenant-02": "tenant-b"}
	byHour := map[archive.Hour][]record.Record{}
	var recs []record.Record
	add := func(r record.Record) {
		recs = append(recs, r)
		h := archive.HourOf(r.Tenant, r.Timestamp)
		byHour[h] = append(byHour[h], r)
	}
	for range 1500 {
		r := g.Next()
		r.Tenant = rename[r.Tenant]
		if r.Timestamp.Before(it0.Add(3 * time.Hour)) {
			add(r)
		}
	}
	for i, p := range []string{"/x' OR tenant <> 'tenant-b' --", "/`tenant`/*", "/é\u0000日"} {
		add(record.Record{Timestamp: it0.Add(time.Duration(i+1) * time.Minute), Tenant: "tenant-b", Method: "GET", Path: p, Status: 200, DurationMS: 1})
	}
	for h, rs := range byHour {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		for _, r := range rs {
			b, err := r.MarshalJSON()
			require.NoError(t, err)
			zw.Write(append(b, '\n'))
		}
		require.NoError(t, zw.Close())
		name := h.Dir() + "/" + archive.Part{Partition: 0, First: 0, Last: int64(len(rs) - 1)}.Name()
		require.NoError(t, archive.WriteFile(context.Background(), fsys, name, buf.Bytes()))
	}
	return recs
}

func (e *itEnv) sync(t *testing.T, token, body string) syncAnswer {
	t.Helper()
	res, b := e.do(t, http.MethodPost, token, "/v1/query?wait=100s", body)
	require.Equal(t, http.StatusOK, res.StatusCode, string(b))
	var a syncAnswer
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&a))
	return a
}

func TestIntegrationResultsMatchArchive(t *testing.T) {
	e := newITEnv(t)
	from, to := it0.Add(30*time.Minute), it0.Add(150*time.Minute) // crosses two hour boundaries
	in := func(r record.Record) bool {
		return r.Tenant == "tenant-a" && !r.Timestamp.Before(from) && r.Timestamp.Before(to)
	}
	rng := fmt.Sprintf(`"from": %q, "to": %q`, from.Format(time.RFC3339), to.Format(time.RFC3339))

	t.Run("count by hour and status", func(t *testing.T) {
		a := e.sync(t, "tok-a", `{`+rng+`, "bucket": "1h", "group_by": ["status"], "aggregations": [{"name": "n", "fn": "count"}, {"name": "bytes", "fn": "sum", "field": "bytes_out"}]}`)
		type key struct {
			b      string
			status int
		}
		want := map[key][2]int64{}
		for _, r := range e.recs {
			if in(r) {
				k := key{r.Timestamp.Truncate(time.Hour).Format(time.RFC3339Nano), r.Status}
				v := want[k]
				want[k] = [2]int64{v[0] + 1, v[1] + r.BytesOut}
			}
		}
		got := map[key][2]int64{}
		for _, row := range a.Rows {
			st, _ := row["status"].(json.Number).Int64()
			n, _ := row["n"].(json.Number).Int64()
			by, _ := row["bytes"].(json.Number).Int64()
			got[key{row["bucket"].(string), int(st)}] = [2]int64{n, by}
		}
		require.NotEmpty(t, want)
		require.Equal(t, want, got)
	})

	t.Run("whole hours need no time check", func(t *testing.T) {
		// [10:00, 13:00) covers its three hours: no record's time is
		// checked, the count per hour must still be exact.
		a := e.sync(t, "tok-a", fmt.Sprintf(`{"from": %q, "to": %q, "bucket": "1h", "aggregations": [{"name": "n", "fn": "count"}]}`,
			it0.Format(time.RFC3339), it0.Add(3*time.Hour).Format(time.RFC3339)))
		want := map[string]int64{}
		for _, r := range e.recs {
			if r.Tenant == "tenant-a" && !r.Timestamp.Before(it0) && r.Timestamp.Before(it0.Add(3*time.Hour)) {
				want[r.Timestamp.Truncate(time.Hour).Format(time.RFC3339Nano)]++
			}
		}
		got := map[string]int64{}
		for _, row := range a.Rows {
			n, _ := row["n"].(json.Number).Int64()
			got[row["bucket"].(string)] = n
		}
		require.Len(t, want, 3)
		require.Equal(t, want, got)
	})

	t.Run("filtered aggregates by method", func(t *testing.T) {
		a := e.sync(t, "tok-a", `{`+rng+`, "filters": [{"field": "status", "op": "gte", "value": 200}, {"field": "path", "op": "prefix", "value": "/api/"}],
			"group_by": ["method"], "aggregations": [{"name": "n", "fn": "count"}, {"name": "hi", "fn": "max", "field": "duration_ms"}, {"name": "avg", "fn": "avg", "field": "duration_ms"}],
			"order": [{"by": "n", "desc": true}]}`)
		type agg struct {
			n       int64
			hi, sum float64
		}
		want := map[string]*agg{}
		for _, r := range e.recs {
			if in(r) && r.Status >= 200 && strings.HasPrefix(r.Path, "/api/") {
				a := want[r.Method]
				if a == nil {
					a = &agg{}
					want[r.Method] = a
				}
				a.n++
				a.hi = math.Max(a.hi, r.DurationMS)
				a.sum += r.DurationMS
			}
		}
		require.Len(t, a.Rows, len(want))
		var prev int64 = math.MaxInt64
		for _, row := range a.Rows {
			w := want[row["method"].(string)]
			require.NotNil(t, w, row)
			n, _ := row["n"].(json.Number).Int64()
			hi, _ := row["hi"].(json.Number).Float64()
			avg, _ := row["avg"].(json.Number).Float64()
			require.Equal(t, w.n, n)
			require.Equal(t, w.hi, hi)
			require.InDelta(t, w.sum/float64(w.n), avg, 1e-9)
			require.LessOrEqual(t, n, prev, "ordered by n desc")
			prev = n
		}
	})

	t.Run("records in time order", func(t *testing.T) {
		a := e.sync(t, "tok-a", `{`+rng+`, "filters": [{"field": "method", "op": "in", "value": ["GET", "HEAD"]}], "limit": 40}`)
		var want []record.Record
		for _, r := range e.recs {
			if in(r) && (r.Method == "GET" || r.Method == "HEAD") {
				want = append(want, r)
			}
		}
		sort.SliceStable(want, func(i, j int) bool {
			if !want[i].Timestamp.Equal(want[j].Timestamp) {
				return want[i].Timestamp.Before(want[j].Timestamp)
			}
			return want[i].RequestID < want[j].RequestID
		})
		want = want[:40]
		require.Len(t, a.Rows, 40)
		for i, row := range a.Rows {
			require.Equal(t, want[i].RequestID, row["request_id"], "row %d", i)
			require.Equal(t, "tenant-a", row["tenant"])
		}
	})
}

func TestIntegrationIsolation(t *testing.T) {
	e := newITEnv(t)
	rng := fmt.Sprintf(`"from": %q, "to": %q`, it0.Format(time.RFC3339), it0.Add(3*time.Hour).Format(time.RFC3339))
	// A filter naming B, a group-by on tenant, and B's hostile paths as values.
	a := e.sync(t, "tok-a", `{`+rng+`, "filters": [{"field": "tenant", "op": "eq", "value": "tenant-b"}]}`)
	require.Empty(t, a.Rows)
	a = e.sync(t, "tok-a", `{`+rng+`, "group_by": ["tenant"], "aggregations": [{"name": "n", "fn": "count"}]}`)
	require.Len(t, a.Rows, 1)
	require.Equal(t, "tenant-a", a.Rows[0]["tenant"])
	for _, p := range []string{"/x' OR tenant <> 'tenant-b' --", "/`tenant`/*", "/é\u0000日", "' OR '1'='1"} {
		pj, _ := json.Marshal(p)
		a = e.sync(t, "tok-a", `{`+rng+`, "filters": [{"field": "path", "op": "eq", "value": `+string(pj)+`}]}`)
		require.Empty(t, a.Rows, "value %q", p)
		b := e.sync(t, "tok-b", `{`+rng+`, "filters": [{"field": "path", "op": "eq", "value": `+string(pj)+`}]}`)
		if p != "' OR '1'='1" {
			require.Len(t, b.Rows, 1, "B finds its own record with value %q, exactly", p)
			require.Equal(t, p, b.Rows[0]["path"])
		} else {
			require.Empty(t, b.Rows)
		}
	}
	// B's job and results are not A's.
	res, body := e.do(t, http.MethodPost, "tok-b", "/v1/jobs", `{`+rng+`, "aggregations": [{"name": "n", "fn": "count"}]}`)
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(body))
	jb := jobOf(t, body)
	e.waitStateLong(t, "tok-b", jb.ID, StateSucceeded)
	for _, path := range []string{"/v1/jobs/" + jb.ID, "/v1/jobs/" + jb.ID + "/results", "/v1/jobs/" + jb.ID + "/events"} {
		res, _ := e.do(t, http.MethodGet, "tok-a", path, "")
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
	}

	// Every transition of B's job, once and in order, on Kafka.
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for p := 0; p < 3 && len(got) < 3; p++ {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(stacktest.Brokers(t), ","), Topic: e.topic, Partition: p, MaxWait: 200 * time.Millisecond})
		last, err := kafka.DialLeader(ctx, "tcp", strings.Split(stacktest.Brokers(t), ",")[0], e.topic, p)
		require.NoError(t, err)
		end, err := last.ReadLastOffset()
		require.NoError(t, err)
		_ = last.Close()
		for off := int64(0); off < end; off++ {
			m, err := rd.ReadMessage(ctx)
			require.NoError(t, err)
			if string(m.Key) != jb.ID {
				continue
			}
			var ev Event
			require.NoError(t, json.Unmarshal(m.Value, &ev))
			require.Equal(t, len(got)+1, ev.Seq)
			got = append(got, string(ev.State))
		}
		_ = rd.Close()
	}
	require.Equal(t, []string{"queued", "running", "succeeded"}, got)
}

func (ts *testService) waitStateLong(t *testing.T, token, id string, want State) {
	t.Helper()
	var last Status
	require.Eventually(t, func() bool {
		res, b := ts.do(t, http.MethodGet, token, "/v1/jobs/"+id, "")
		if res.StatusCode != http.StatusOK {
			return false
		}
		last = jobOf(t, b)
		return last.State == want || (last.State.Final() && want != last.State)
	}, 2*time.Minute, 100*time.Millisecond, "job %s never %s", id, want)
	require.Equal(t, want, last.State, "job %s: %+v", id, last.Error)
}

// slowSQL runs for minutes on local Spark unless interrupted.
const slowSQL = `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z", "sql": "SELECT count(*) AS n FROM range(0, 50000000000000) WHERE id % 7 = 3", "limit": 1}`

// Cancel, and a synchronous caller that goes away, stop Spark's work, not
// only the bookkeeping: seen in Spark's state as the CPU its server burns —
// busy while the job runs, idle once it is cancelled. Holds the pool alone
// so no other test's work is counted.
func TestIntegrationCancelAndDisconnect(t *testing.T) {
	stacktest.ExclusivePool(t)
	e := openITEnv(t)
	admin := &poolctl.Admin{Socket: stacktest.Get(t, "HOURGLASS_SPARK_CONNECT_POOL_ADMIN_SOCKET"), Backend: poolctl.DefaultBackend}
	res, b := e.do(t, http.MethodPost, "tok-admin", "/v1/jobs", slowSQL)
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(b))
	id := jobOf(t, b).ID
	srv := serverOfSession(t, admin, e.waitSession(t, id, ""))
	sparkBusy(t, srv)
	start := time.Now()
	res, _ = e.do(t, http.MethodPost, "tok-admin", "/v1/jobs/"+id+"/cancel", "")
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	e.waitStateLong(t, "tok-admin", id, StateCancelled)
	require.Less(t, time.Since(start), 15*time.Second, "cancelled within seconds")
	sparkIdle(t, srv)

	// A synchronous-only caller that goes away: its job is cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.URL+"/v1/query?wait=100s", strings.NewReader(slowSQL))
	req.Header.Set("Authorization", "Bearer tok-admin")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	var sid string
	require.Eventually(t, func() bool {
		res, b := e.do(t, http.MethodGet, "tok-admin", "/v1/jobs?limit=1", "")
		var l struct{ Jobs []Status }
		if res.StatusCode != http.StatusOK || json.Unmarshal(b, &l) != nil || len(l.Jobs) == 0 || l.Jobs[0].ID == id {
			return false
		}
		sid = l.Jobs[0].ID
		return l.Jobs[0].State == StateRunning
	}, time.Minute, 100*time.Millisecond)
	srv = serverOfSession(t, admin, e.waitSession(t, sid, ""))
	sparkBusy(t, srv)
	cancel()
	<-done
	e.waitStateLong(t, "tok-admin", sid, StateCancelled)
	j, _ := e.s.mgr.Lookup(sid)
	require.Equal(t, JobCodeClientGone, j.Error.Code)
	sparkIdle(t, srv)

	// The tenant's session is usable right after.
	a := e.sync(t, "tok-admin", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z", "sql": "SELECT 1 AS one"}`)
	require.Len(t, a.Rows, 1)
}

// A job whose limit is over inline-rows: Spark writes its rows into the
// archive's file system (the service collects nothing), and the pages read
// back equal the archive's records, in order, across hours.
func TestIntegrationLargeResultWrittenBySpark(t *testing.T) {
	e := newITEnv(t, func(c *Config) { c.InlineRows = 50 })
	from, to := it0.Add(20*time.Minute), it0.Add(170*time.Minute)
	var want []record.Record
	for _, r := range e.recs {
		if r.Tenant == "tenant-a" && !r.Timestamp.Before(from) && r.Timestamp.Before(to) {
			want = append(want, r)
		}
	}
	sort.SliceStable(want, func(i, j int) bool {
		if !want[i].Timestamp.Equal(want[j].Timestamp) {
			return want[i].Timestamp.Before(want[j].Timestamp)
		}
		return want[i].RequestID < want[j].RequestID
	})
	require.Greater(t, len(want), 200, "enough rows for several pages")
	body := fmt.Sprintf(`{"from": %q, "to": %q, "limit": 5000}`, from.Format(time.RFC3339), to.Format(time.RFC3339))
	res, b := e.do(t, http.MethodPost, "tok-a", "/v1/jobs", body)
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(b))
	id := jobOf(t, b).ID
	e.waitStateLong(t, "tok-a", id, StateSucceeded)
	j, _ := e.s.mgr.Lookup(id)
	require.True(t, j.ResultsWritten, "written by Spark")
	require.Equal(t, len(want), j.Rows, "counted by Spark")
	entries, err := e.fs.ReadDir(context.Background(), "_query/results/"+id)
	require.NoError(t, err)
	require.NotEmpty(t, entries)

	got := e.allPages(t, "tok-a", id, 77, 100)
	require.Len(t, got, len(want))
	for i, row := range got {
		require.Equal(t, want[i].RequestID, row["request_id"], "row %d", i)
		require.Equal(t, "tenant-a", row["tenant"])
		require.Len(t, row, len(j.Columns), "every column, null ones too")
		ts, err := time.Parse(time.RFC3339Nano, row["timestamp"].(string))
		require.NoError(t, err)
		require.True(t, want[i].Timestamp.Equal(ts), "row %d: %s vs %s", i, ts, want[i].Timestamp)
	}

	// An admin's free SQL with a large limit: its columns come from Spark.
	res, b = e.do(t, http.MethodPost, "tok-admin", "/v1/jobs", `{"from": "2026-02-03T10:00:00Z", "to": "2026-02-03T11:00:00Z", "sql": "SELECT id, id * 2 AS twice FROM range(0, 120)", "limit": 1000}`)
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(b))
	id = jobOf(t, b).ID
	e.waitStateLong(t, "tok-admin", id, StateSucceeded)
	res, b = e.do(t, http.MethodGet, "tok-admin", "/v1/jobs/"+id, "")
	st := jobOf(t, b)
	require.Equal(t, 120, st.Rows)
	require.Equal(t, []archivequery.Column{{Name: "id", Type: archivequery.ColInt}, {Name: "twice", Type: archivequery.ColInt}}, st.Columns)
	rows := e.allPages(t, "tok-admin", id, 1000, 2)
	require.Len(t, rows, 120)
	sum := 0.0
	for _, r := range rows {
		sum += r["twice"].(float64)
	}
	require.Equal(t, float64(2*119*120/2), sum)
}

// Kill the Spark Connect server running a job: the job runs again on a new
// session on the other server (a read-only plan is safe to rerun); killing
// that one too fails the job with spark_unavailable and says why. Holds the
// pool alone (other packages' sessions are not killed under them) and
// restarts the servers after.
func TestIntegrationSparkServerKilledMidJob(t *testing.T) {
	stacktest.ExclusivePool(t)
	e := openITEnv(t)
	admin := &poolctl.Admin{Socket: stacktest.Get(t, "HOURGLASS_SPARK_CONNECT_POOL_ADMIN_SOCKET"), Backend: poolctl.DefaultBackend}
	t.Cleanup(func() { restartPoolServers(t, admin) })
	restartPoolServers(t, admin) // every server up before

	res, b := e.do(t, http.MethodPost, "tok-admin", "/v1/jobs", slowSQL)
	require.Equal(t, http.StatusAccepted, res.StatusCode, string(b))
	id := jobOf(t, b).ID
	first := e.waitSession(t, id, "")
	srv1 := serverOfSession(t, admin, first)
	killServer(t, srv1)

	second := e.waitSession(t, id, first)
	srv2 := serverOfSession(t, admin, second)
	require.NotEqual(t, srv1, srv2, "the rerun went to a live server")
	j, _ := e.s.mgr.Lookup(id)
	require.Equal(t, StateRunning, j.State, "still running, on its second session")

	killServer(t, srv2)
	e.waitStateLong(t, "tok-admin", id, StateFailed)
	res, b = e.do(t, http.MethodGet, "tok-admin", "/v1/jobs/"+id, "")
	st := jobOf(t, b)
	require.Equal(t, JobCodeSparkUnavailable, st.Error.Code, st.Error.Message)
	require.Contains(t, st.Error.Message, "died")
	require.Equal(t, 2, st.Attempts)
	t.Logf("job failed as: %s", st.Error.Message)
}

// waitSession waits until the engine runs job id on a session other than
// not, and returns its id.
func (e *itEnv) waitSession(t *testing.T, id, not string) string {
	t.Helper()
	var s string
	require.Eventually(t, func() bool {
		s = e.engine.sessionOf(id)
		if j, _ := e.s.mgr.Lookup(id); j.State.Final() {
			require.FailNow(t, "job ended before it ran on a new session", "job %s %s: %+v", id, j.State, j.Error)
		}
		return s != "" && s != not
	}, 2*time.Minute, 50*time.Millisecond, "job %s never ran on a new session", id)
	return s
}

// serverOfSession is the pool server HAProxy pinned a session to.
func serverOfSession(t *testing.T, admin *poolctl.Admin, session string) string {
	t.Helper()
	var name string
	require.Eventually(t, func() bool {
		entries, err := admin.Entries(context.Background())
		require.NoError(t, err)
		servers, err := admin.Servers(context.Background(), time.Minute)
		require.NoError(t, err)
		for _, en := range entries {
			if en.Key != session {
				continue
			}
			for _, srv := range servers {
				if srv.ID == en.ServerID {
					name = srv.Name
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "session %s is not in the stick table", session)
	return name
}

// killServer kills a pool server's process group with SIGKILL, as a
// crashed host would end it.
func killServer(t *testing.T, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stacktest.Get(t, "HOURGLASS_HOME"), "run", "pids", name+".pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
}

// restartPoolServers starts the pool servers that are not running and
// waits until every one is UP in HAProxy.
func restartPoolServers(t *testing.T, admin *poolctl.Admin) {
	t.Helper()
	out, err := exec.Command("bash", stacktest.Get(t, "HOURGLASS_STACK_SCRIPT"), "up", "spark_connect").CombinedOutput()
	require.NoError(t, err, "stack.sh up spark_connect: %s", out)
	require.Eventually(t, func() bool {
		servers, err := admin.Servers(context.Background(), time.Minute)
		if err != nil || len(servers) < 2 {
			return false
		}
		up := true
		for _, s := range servers {
			if s.Status == "DRAIN" || strings.HasPrefix(s.Status, "MAINT") {
				require.NoError(t, admin.SetState(context.Background(), s.Name, "ready"))
			}
			up = up && s.Status == "UP"
		}
		return up
	}, 3*time.Minute, 500*time.Millisecond, "pool servers not all UP")
}

// serverCPU is the CPU time (seconds) used so far by a pool server: every
// process of its process group (spark-submit's wrapper and its JVM).
func serverCPU(t *testing.T, name string) float64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(stacktest.Get(t, "HOURGLASS_HOME"), "run", "pids", name+".pid"))
	require.NoError(t, err)
	pgid := strings.TrimSpace(string(data))
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	var ticks float64
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone since the glob
		}
		// Fields after the ")" closing the command: state ppid pgrp ... utime(12th) stime(13th).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 13 || f[2] != pgid {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		ticks += u + s
	}
	return ticks / 100 // USER_HZ
}

// cpuRate is a pool server's CPU use, in cores, over one second.
func cpuRate(t *testing.T, name string) float64 {
	t.Helper()
	a, t0 := serverCPU(t, name), time.Now()
	time.Sleep(time.Second) // a measurement window, not synchronisation
	return (serverCPU(t, name) - a) / time.Since(t0).Seconds()
}

// sparkBusy waits until the server computes (the job's stage runs).
func sparkBusy(t *testing.T, name string) {
	t.Helper()
	var r float64
	require.Eventually(t, func() bool { r = cpuRate(t, name); return r > 0.5 }, time.Minute, 10*time.Millisecond,
		"%s never got busy with the job (%.2f cores)", name, r)
}

// sparkIdle waits until the server stops computing: its operation was
// interrupted, not left running.
func sparkIdle(t *testing.T, name string) {
	t.Helper()
	var r float64
	start := time.Now()
	require.Eventually(t, func() bool { r = cpuRate(t, name); return r < 0.25 }, 30*time.Second, 10*time.Millisecond,
		"%s still computes after the cancel (%.2f cores): the Spark operation was not interrupted", name, r)
	t.Logf("%s idle (%.2f cores) %s after the job ended", name, r, time.Since(start).Round(100*time.Millisecond))
}
