//go:build integration || bench

package archiver_test

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
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/auth"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/telemetry/telemetrytest"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/services/archiver"
	"github.com/hourglass-io/hourglass/services/logpeek"
)

var start = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// env is one isolated archiver setup: a unique topic, group and HDFS root.
type env struct {
	brokers, topic, group, namenode, root string
	fs                                    archive.FS
}

func newEnv(t *testing.T, partitions int) *env {
	name := stacktest.UniqueName("archiver-it")
	e := &env{
		brokers:  stacktest.Brokers(t),
		topic:    "hourglass.logs.raw." + name,
		group:    name,
		namenode: stacktest.Get(t, "HOURGLASS_HDFS_NAMENODE"),
		root:     "/hourglass-test/" + name,
	}
	stacktest.CreateTopic(t, e.brokers, e.topic, partitions)
	fsys, err := archive.NewHDFS(archive.HDFSConfig{NameNodes: []string{e.namenode}, Root: e.root, IOTimeout: 10 * time.Second})
	require.NoError(t, err)
	e.fs = fsys
	t.Cleanup(func() {
		_ = fsys.Close()
		c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{e.namenode}, User: "hourglass"})
		if err == nil {
			_ = c.RemoveAll(e.root)
			_ = c.Close()
		}
	})
	return e
}

// produce writes n generated records (a share malformed) keyed by tenant and
// returns the valid ones.
// produce writes n generated records (a share malformed) to the raw topic:
// every other valid one as ingress writes it (canonical, with
// record.CanonicalHeader), the rest as the generator wrote them, unmarked
// (as Fluentd relays a node's lines), so both of the archiver's paths run.
// markAll marks every valid record (the bench: ingress's share of a
// production raw topic).
func (e *env) produce(t *testing.T, seed uint64, n int, malformed float64, markAll ...bool) []record.Record {
	g := gen.New(gen.Config{Seed: seed, Tenants: 4, Start: start, Rate: float64(n) / (3 * 3600), Malformed: malformed, Disorder: 5 * time.Minute})
	var valid []record.Record
	msgs := make([]kafka.Message, 0, n)
	for range n {
		line, ok := g.NextLine()
		key := []byte("bad")
		var headers []kafka.Header
		if rec, _, err := record.Decode(line); err == nil {
			valid = append(valid, rec)
			key = []byte(rec.Tenant)
			if len(valid)%2 == 0 || len(markAll) > 0 && markAll[0] {
				line = rec.AppendJSON(nil)
				headers = []kafka.Header{topology.CanonicalMark()}
			}
		} else {
			require.False(t, ok && err == nil)
		}
		msgs = append(msgs, kafka.Message{Key: key, Value: line, Headers: headers})
	}
	stacktest.Produce(t, e.brokers, e.topic, msgs...)
	return valid
}

func (e *env) config() archiver.Config {
	cfg := archiver.DefaultConfig()
	cfg.Brokers = []string{e.brokers}
	cfg.Topic = e.topic
	cfg.Group = e.group
	cfg.MaxFileAge = 500 * time.Millisecond
	cfg.MaxFileBytes = 64 << 10
	cfg.SessionTimeout = 6 * time.Second
	cfg.MaxBackoff = time.Second
	return cfg
}

// startArchiver runs an archiver in this process until the test ends.
func (e *env) startArchiver(t *testing.T, reg *prometheus.Registry) {
	a, err := archiver.New(e.config(), e.fs, slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// archived counts request ids over every part file, checking that each
// record lies in its file's hour and that no temporary file is left.
func archived(t *testing.T, fsys archive.FS) map[string]int {
	t.Helper()
	ctx := context.Background()
	tenants, err := fsys.ReadDir(ctx, ".")
	require.NoError(t, err)
	got := map[string]int{}
	for _, te := range tenants {
		tenant := strings.TrimPrefix(te.Name, "tenant=")
		hours, err := archive.ListHours(ctx, fsys, tenant, start.Add(-24*time.Hour), time.Now().Add(24*time.Hour))
		require.NoError(t, err)
		for _, h := range hours {
			parts, temps, err := archive.ListHour(ctx, fsys, h)
			require.NoError(t, err)
			require.Empty(t, temps, "temporary files left in %s", h)
			for _, p := range parts {
				r, err := fsys.Open(ctx, p.Path())
				require.NoError(t, err)
				zr, err := gzip.NewReader(r)
				require.NoError(t, err)
				sc := bufio.NewScanner(zr)
				for sc.Scan() {
					rec, _, err := record.Decode(sc.Bytes())
					require.NoError(t, err)
					require.Equal(t, h, archive.HourOf(rec.Tenant, rec.Timestamp), "record in its event-time hour")
					got[rec.RequestID]++
				}
				require.NoError(t, sc.Err())
				r.Close()
			}
		}
	}
	return got
}

func counts(recs []record.Record) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[r.RequestID]++
	}
	return m
}

// TestArchiveRoundTripHDFS: generated records → Kafka → archiver on HDFS →
// logpeek returns exactly the records of one tenant and hour.
func TestArchiveRoundTripHDFS(t *testing.T) {
	e := newEnv(t, 3)
	const n = 30_000
	valid := e.produce(t, 1, n, 0.01)
	reg := prometheus.NewRegistry()
	began := time.Now()
	e.startArchiver(t, reg)
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.topic, 3*time.Minute)
	took := time.Since(began)
	require.Equal(t, counts(valid), archived(t, e.fs), "the archive holds every valid record exactly once")
	require.Equal(t, float64(n), telemetrytest.Sum(t, reg, "hourglass_archiver_records_in_total"))
	require.Equal(t, float64(len(valid)), telemetrytest.Sum(t, reg, "hourglass_archiver_records_archived_total"))
	require.Equal(t, float64(n-len(valid)), telemetrytest.Sum(t, reg, "hourglass_archiver_records_skipped_total"))
	files := telemetrytest.Sum(t, reg, "hourglass_archiver_files_written_total")
	t.Logf("%d records (%d valid) archived on HDFS in %s, %v part files", n, len(valid), took.Round(time.Millisecond), files)

	// logpeek over the same HDFS archive: one tenant, one hour, paged.
	hour := start.Add(time.Hour)
	var want []string
	for _, r := range valid {
		if r.Tenant == "tenant-02" && !r.Timestamp.Before(hour) && r.Timestamp.Before(hour.Add(time.Hour)) {
			want = append(want, r.RequestID)
		}
	}
	slices.Sort(want)
	require.NotEmpty(t, want)
	got, pages := peek(t, e.fs, "dev-token", "tenant-02", hour, hour.Add(time.Hour), 500)
	slices.Sort(got)
	require.Equal(t, want, got, "logpeek returns exactly the tenant's records of the hour")
	require.Greater(t, pages, 1)

	// An admin reads another tenant over the whole range, in one page.
	want = want[:0]
	for _, r := range valid {
		if r.Tenant == "tenant-03" {
			want = append(want, r.RequestID)
		}
	}
	slices.Sort(want)
	got, _ = peek(t, e.fs, "sre-token", "tenant-03", start.Add(-time.Hour), start.Add(4*time.Hour), 10_000)
	slices.Sort(got)
	require.Equal(t, want, got)

	// The developer token never sees another tenant.
	ts := logpeekServer(t, e.fs)
	for _, path := range []string{"/v1/logs", "/v1/partitions"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path+"?tenant=tenant-03&from="+url.QueryEscape(hour.Format(time.RFC3339))+
			"&to="+url.QueryEscape(hour.Add(time.Hour).Format(time.RFC3339)), nil)
		req.Header.Set("Authorization", "Bearer dev-token")
		res, err := ts.Client().Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusForbidden, res.StatusCode, string(body))
		require.Contains(t, string(body), logpeek.CodeTenantForbidden)
		require.NotContains(t, string(body), "tenant-03-")
	}
}

// peek runs logpeek in process over fsys and returns the request ids of
// every record it streams for tenant in [from, to), following cursors.
func peek(t *testing.T, fsys archive.FS, token, tenant string, from, to time.Time, limit int) ([]string, int) {
	t.Helper()
	ts := logpeekServer(t, fsys)
	var ids []string
	pages := 0
	cursor := ""
	for {
		p := url.Values{"tenant": {tenant}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "limit": {strconv.Itoa(limit)}}
		if cursor != "" {
			p.Set("cursor", cursor)
		}
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/logs?"+p.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := ts.Client().Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		pages++
		var next string
		var complete bool
		var last time.Time
		for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
			if bytes.HasPrefix(line, []byte(`{"_meta":`)) {
				var m struct {
					Meta struct {
						Complete   bool   `json:"complete"`
						NextCursor string `json:"next_cursor"`
					} `json:"_meta"`
				}
				require.NoError(t, json.Unmarshal(line, &m))
				next, complete = m.Meta.NextCursor, m.Meta.Complete
				continue
			}
			rec, _, err := record.Decode(line)
			require.NoError(t, err)
			require.Equal(t, tenant, rec.Tenant)
			require.False(t, rec.Timestamp.Before(last), "time order")
			last = rec.Timestamp
			ids = append(ids, rec.RequestID)
		}
		if complete {
			return ids, pages
		}
		require.NotEmpty(t, next)
		cursor = next
	}
}

func digest(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func logpeekServer(t *testing.T, fsys archive.FS) *httptest.Server {
	tok, err := auth.Parse([]byte(fmt.Sprintf(`
tokens:
  - {name: dev, sha256: %s, role: developer, tenants: [tenant-02]}
  - {name: sre, sha256: %s, role: admin}
`, digest("dev-token"), digest("sre-token"))))
	require.NoError(t, err)
	s, err := logpeek.New(logpeek.DefaultConfig(), fsys, tok, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func committedTotal(t *testing.T, e *env, partitions int) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := stacktest.CommittedTotal(ctx, e.brokers, e.group, e.topic, partitions)
	require.NoError(t, err)
	return n
}

// TestArchiverSIGKILL kills the archiver process without warning several
// times mid-run and restarts it; afterwards every record is archived exactly
// once, checked by request id.
func TestArchiverSIGKILL(t *testing.T) {
	e := newEnv(t, 3)
	bin := stacktest.Binary(t)
	const n = 60_000
	valid := e.produce(t, 2, n, 0.005)
	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "archiver", "--brokers", e.brokers, "--archive-root", "hdfs://"+e.namenode+e.root,
			"--source-topic", e.topic, "--group", e.group, "--max-file-age", "200ms", "--max-file-bytes", "16384",
			"--session-timeout", "6s", "--listen-addr", "127.0.0.1:0", "--log-level", "warn")
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		return cmd
	}
	kills := 0
	for kills < 4 {
		cmd := run()
		before := committedTotal(t, e, 3)
		require.Eventually(t, func() bool { return committedTotal(t, e, 3) > before }, 2*time.Minute, 5*time.Millisecond)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()
		kills++
		if committedTotal(t, e, 3) >= n {
			break
		}
	}
	cmd := run()
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.topic, 3*time.Minute)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a graceful stop exits 0")

	got := archived(t, e.fs)
	var missing, dups int
	for id, c := range counts(valid) {
		if got[id] < c {
			missing++
		}
		if got[id] > c {
			dups++
		}
	}
	t.Logf("after %d SIGKILLs: %d records, %d missing, %d duplicated", kills, len(valid), missing, dups)
	require.Equal(t, counts(valid), got, "every record exactly once after %d SIGKILLs", kills)
	require.GreaterOrEqual(t, kills, 2)
}

// TestArchiverDataNodeDown stops the HDFS DataNode mid-run: the archiver
// pauses and retries, and once the DataNode is back every record is
// archived exactly once. This is the one test allowed to stop a stack
// process; it restarts it in any case.
func TestArchiverDataNodeDown(t *testing.T) {
	// The DataNode is killed below: other packages' tests that use HDFS
	// wait until it is back (taken before newEnv's shared use).
	stacktest.ExclusiveHDFS(t)
	e := newEnv(t, 2)
	reg := prometheus.NewRegistry()
	e.startArchiver(t, reg)
	valid := e.produce(t, 3, 5000, 0)
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.topic, time.Minute)

	pidFile := filepath.Join(stacktest.Get(t, "HOURGLASS_HOME"), "run", "pids", "hdfs-datanode.pid")
	raw, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	require.NoError(t, err)
	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		up := exec.Command("bash", "stack/stack.sh", "up", "hdfs")
		up.Dir = "../.."
		out, err := up.CombinedOutput()
		require.NoError(t, err, "restart the DataNode: %s", out)
	}
	t.Cleanup(restart)
	// The DataNode leads its own process group (the stack starts it with setsid).
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) != nil }, 30*time.Second, 50*time.Millisecond)
	downAt := time.Now()

	valid2 := e.produce(t, 4, 5000, 0)
	require.Eventually(t, func() bool {
		return telemetrytest.Sum(t, reg, "hourglass_archiver_archive_retries_total") >= 3 &&
			telemetrytest.Sum(t, reg, "hourglass_archiver_paused_partitions") >= 1
	}, time.Minute, 50*time.Millisecond, "the archiver retries and pauses while the DataNode is down")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	end, err := stacktest.EndOffsets(ctx, e.brokers, e.topic)
	require.NoError(t, err)
	committed, err := stacktest.Committed(ctx, e.brokers, e.group, e.topic, 2)
	cancel()
	require.NoError(t, err)
	behind := false
	for p, o := range end {
		behind = behind || committed[p] < o
	}
	require.True(t, behind, "nothing past the unwritten records is committed while the DataNode is down")

	restart()
	upAt := time.Now()
	stacktest.WaitCaughtUp(t, e.brokers, e.group, e.topic, 3*time.Minute)
	t.Logf("DataNode down %s; archive caught up %s after its restart; %v retries",
		upAt.Sub(downAt).Round(time.Millisecond), time.Since(upAt).Round(time.Millisecond),
		telemetrytest.Sum(t, reg, "hourglass_archiver_archive_retries_total"))
	require.Equal(t, counts(append(valid, valid2...)), archived(t, e.fs), "no loss, no duplicate")
	require.Zero(t, telemetrytest.Sum(t, reg, "hourglass_archiver_paused_partitions"))
}
