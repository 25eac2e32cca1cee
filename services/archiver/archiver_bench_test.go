//go:build bench

package archiver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/stacktest"
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
// The baselines run Hadoop's FsShell in a JVM; its start-up (timed with a
// no-op FsShell call in the same repetition) is subtracted.
func TestBenchArchive(t *testing.T) {
	const n = 200_000
	e := newEnv(t, 3)
	valid := e.produce(t, 11, n, 0)
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
	mb := float64(ndjson.Len()) / 1e6

	write := benchreport.Result{Goal: 0.5, Name: "archive write (HDFS)", Unit: "MB/s",
		Subject: "Kafka → archiver → gzip part files", Baseline: "hdfs dfs -put (same bytes, uncompressed)",
		Notes: fmt.Sprintf("%d records, %.0f MB of canonical JSON", len(valid), mb)}
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
		a, err := archiver.New(cfg, fsys, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		began := time.Now()
		go func() { done <- a.Run(ctx) }()
		stacktest.WaitCommitted(t, e.brokers, cfg.Group, e.topic, 3, n, 10*time.Minute)
		write.Subj = append(write.Subj, mb/time.Since(began).Seconds())
		cancel()
		require.NoError(t, <-done)

		jvm := fsShell(t, nil, "-test", "-d", "/")
		put := fsShell(t, nil, "-put", local, e.root+fmt.Sprintf("/put-%d.ndjson", rep))
		write.Base = append(write.Base, mb/(put-jvm).Seconds())

		tenant := "tenant-01"
		tmb := float64(tenantBytes[tenant]) / 1e6
		scan.Subj = append(scan.Subj, tmb/peekAll(t, fsys, tenant).Seconds())
		var out countWriter
		text := fsShell(t, &out, "-text", root+"/tenant="+tenant+"/*/*/part-*.jsonl.gz")
		require.Equal(t, tenantBytes[tenant], int(out), "hdfs dfs -text printed the tenant's bytes")
		scan.Base = append(scan.Base, tmb/(text-jvm).Seconds())
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
