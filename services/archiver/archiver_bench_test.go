//go:build bench

package archiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/telemetry/telemetrytest"
	"github.com/hourglass-io/hourglass/services/archiver"
)

// TestBenchArchive measures, on the real HDFS:
//   - archive write: MB/s of records (canonical JSON bytes) the archiver takes
//     from Kafka into gzip part files, beside `hdfs dfs -put` of a file with
//     the same bytes;
//   - log-peek scan: MB/s of records logpeek streams for one tenant over the
//     whole range, beside `hdfs dfs -text` (gunzip and print) of that
//     tenant's part files.
//
// The baselines run Hadoop's FsShell in a JVM; its start-up is excluded by
// timing two runs, one over the bytes once and one over them 1+3 times, and
// dividing the 3 extra copies' bytes by the difference (subtracting a no-op
// run's time instead swung the baseline from 84 to 361 MB/s between runs).
//
// Records: HOURGLASS_BENCH_ARCHIVE_RECORDS, default 800 000 (~300 MB; the
// archiver takes ~3 s). With 200 000 (~76 MB, ~1 s) the figure was mostly
// the pipeline's fixed latencies (first fetch, the last part file's age
// roll, the last commit), not its throughput: 61 MB/s against 97 MB/s
// for the same code at 800 000, same day.
func TestBenchArchive(t *testing.T) {
	n := 800_000
	if v := os.Getenv("HOURGLASS_BENCH_ARCHIVE_RECORDS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err, "HOURGLASS_BENCH_ARCHIVE_RECORDS")
	}
	e := newEnv(t, 3)
	valid := e.produce(t, 11, n, 0, true) // as ingress writes them
	var ndjson bytes.Buffer
	tenantBytes := map[string]int{}
	for _, r := range valid {
		b, err := json.Marshal(r)
		require.NoError(t, err)
		ndjson.Write(b)
		ndjson.WriteByte('\n')
		tenantBytes[r.Tenant] += len(b) + 1
	}
	local := filepath.Join(t.TempDir(), "records.ndjson")
	require.NoError(t, os.WriteFile(local, ndjson.Bytes(), 0o644))
	const putExtra, textExtra, textExtraMB = 3, 3, 150
	links := []string{local} // the same bytes under 1+putExtra names (hard links)
	for i := range putExtra {
		l := fmt.Sprintf("%s.%d", local, i)
		require.NoError(t, os.Link(local, l))
		links = append(links, l)
	}
	mb := float64(ndjson.Len()) / 1e6

	write := benchreport.Result{Goal: 0.5, Name: "archive write (HDFS)", Unit: "MB/s",
		Subject: "Kafka → archiver → gzip part files", Baseline: "hdfs dfs -put (same bytes, uncompressed)",
		Notes: fmt.Sprintf("%d records, %.0f MB of canonical JSON", len(valid), mb)}
	valid = nil // no heap of records for the GC to scan beside the archiver
	runtime.GC()
	scan := benchreport.Result{Goal: 0.5, Name: "log-peek scan (HDFS)", Unit: "MB/s",
		Subject: "GET /v1/logs, one tenant, whole range", Baseline: "hdfs dfs -text of the tenant's part files"}
	for rep := range benchreport.Reps() {
		root := fmt.Sprintf("%s/rep-%d", e.root, rep)
		fsys, err := archive.NewHDFS(archive.HDFSConfig{NameNodes: []string{e.namenode}, Root: root, IOTimeout: 20 * time.Second})
		require.NoError(t, err)
		cfg := e.config()
		cfg.Group = stacktest.UniqueName("bench-archiver")
		cfg.MaxFileAge = 250 * time.Millisecond
		cfg.MaxFileBytes = 64 << 20
		reg := prometheus.NewRegistry()
		a, err := archiver.New(cfg, fsys, slog.New(slog.DiscardHandler), reg)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		// From the first record in (the group joined and its partitions
		// assigned: a second or two of the consumer group protocol, not
		// archiving) to every record committed.
		var began time.Time
		require.Eventually(t, func() bool {
			began = time.Now()
			return telemetrytest.Sum(t, reg, "hourglass_archiver_records_in_total") > 0
		}, time.Minute, time.Millisecond, "the archiver never got a record")
		stacktest.WaitCommitted(t, e.brokers, cfg.Group, e.topic, 3, int64(n), 10*time.Minute)
		took := time.Since(began)
		write.Subj = append(write.Subj, mb/took.Seconds())
		if n, sum := telemetrytest.Histogram(t, reg, "hourglass_archiver_flush_seconds"); n > 0 {
			t.Logf("rep %d: %s for %.0f MB; %d part files written in %.2f s of flushes (summed over the partitions' goroutines)", rep, took.Round(time.Millisecond), mb, n, sum)
		}
		cancel()
		require.NoError(t, <-done)

		// One JVM putting 1 copy, another putting 1+putExtra copies: the
		// difference is putExtra copies' worth of writing, start-up excluded.
		dirA, dirB := fmt.Sprintf("%s/put-%d-a/", e.root, rep), fmt.Sprintf("%s/put-%d-b/", e.root, rep)
		fsShell(t, nil, "-mkdir", "-p", dirA, dirB)
		put1 := fsShell(t, nil, "-put", links[0], dirA)
		putN := fsShell(t, nil, append(append([]string{"-put"}, links...), dirB)...)
		write.Base = append(write.Base, float64(putExtra)*mb/(putN-put1).Seconds())

		tenant := "tenant-01"
		tmb := float64(tenantBytes[tenant]) / 1e6
		scan.Subj = append(scan.Subj, tmb/peekAll(t, fsys, tenant).Seconds())
		// The same for -text: the tenant's files once, then 1+textExtra times.
		glob := root + "/tenant=" + tenant + "/*/*/part-*.jsonl.gz"
		var out countWriter
		text1 := fsShell(t, &out, "-text", glob)
		require.Equal(t, tenantBytes[tenant], int(out), "hdfs dfs -text printed the tenant's bytes")
		// One tenant's files are a few MB: a few copies take less than the
		// JVM's own run-to-run variance (the difference came out negative), so
		// the extra copies add up to at least textExtraMB.
		extra := max(textExtra, int(math.Ceil(textExtraMB/tmb)))
		args := []string{"-text"}
		for range 1 + extra {
			args = append(args, glob)
		}
		out = 0
		textN := fsShell(t, &out, args...)
		require.Equal(t, (1+extra)*tenantBytes[tenant], int(out))
		require.Greater(t, textN, text1, "hdfs dfs -text of %d more copies took no longer: the baseline cannot be measured", extra)
		scan.Base = append(scan.Base, float64(extra)*tmb/(textN-text1).Seconds())
		_ = fsys.Close()
	}
	benchreport.Write(t, write)
	benchreport.Write(t, scan)
}

// peekAll reads every record of tenant through logpeek, paging by cursor.
func peekAll(t *testing.T, fsys archive.FS, tenant string) time.Duration {
	ts := logpeekServer(t, fsys)
	began := time.Now()
	cursor := ""
	for {
		p := url.Values{"tenant": {tenant}, "from": {start.Add(-time.Hour).Format(time.RFC3339)},
			"to": {start.Add(4 * time.Hour).Format(time.RFC3339)}, "limit": {"10000"}}
		if cursor != "" {
			p.Set("cursor", cursor)
		}
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/logs?"+p.Encode(), nil)
		req.Header.Set("Authorization", "Bearer sre-token")
		res, err := ts.Client().Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, string(body))
		lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
		var meta struct {
			Meta struct {
				NextCursor string `json:"next_cursor"`
				Complete   bool   `json:"complete"`
			} `json:"_meta"`
		}
		require.NoError(t, json.Unmarshal(lines[len(lines)-1], &meta))
		if meta.Meta.Complete || meta.Meta.NextCursor == "" {
			return time.Since(began)
		}
		cursor = meta.Meta.NextCursor
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// fsShell runs Hadoop's FsShell (`hdfs dfs`) and returns how long it took.
func fsShell(t *testing.T, stdout io.Writer, args ...string) time.Duration {
	opens := []string{}
	for _, m := range []string{"java.lang", "java.util", "java.io", "java.net", "java.nio", "java.lang.reflect",
		"java.util.concurrent", "java.util.zip", "sun.nio.ch", "sun.security.util", "sun.security.x509"} {
		opens = append(opens, "--add-opens=java.base/"+m+"=ALL-UNNAMED")
	}
	cmd := exec.Command("java", append(append(opens, "-Xmx512m", "-cp", stacktest.Get(t, "HOURGLASS_HADOOP_CLASSPATH"),
		"org.apache.hadoop.fs.FsShell"), args...)...)
	if stdout == nil {
		stdout = io.Discard
	}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	began := time.Now()
	require.NoError(t, cmd.Run(), "hdfs dfs %s: %s", strings.Join(args, " "), stderr.String())
	return time.Since(began)
}
