package logpeek

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/archive"
)

// BenchmarkLogsScan: one tenant's whole range read through GET /v1/logs,
// page by page (limit 10 000, cursor after cursor), from a local archive (no
// HDFS: the CPU cost of the scan alone). The tenant holds ~50 000 records an
// hour, so each hour is ~5 pages: the cost of paging inside an hour shows.
// Only the tenant's own hour directories are ever read, so the archive holds
// no other tenant.
//
//	go test -run '^$' -bench LogsScan -cpuprofile cpu.out ./services/logpeek
func BenchmarkLogsScan(b *testing.B) {
	fsys, err := archive.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	recs := writeArchiveOf(b, fsys, 1, 150_000) // tenant-01, 3 hours (and a few minutes before)
	for _, c := range []struct {
		name  string
		bytes int64
	}{{"cache=off", 0}, {"cache=on", DefaultConfig().PageCacheBytes}} {
		cfg := DefaultConfig()
		cfg.PageCacheBytes = c.bytes
		b.Run(c.name, func(b *testing.B) { benchLogsScan(b, fsys, cfg, len(recs)) })
	}
}

func benchLogsScan(b *testing.B, fsys archive.FS, cfg Config, records int) {
	s, err := New(cfg, fsys, testTokens(b), slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	for b.Loop() {
		cursor, total, n, pages := "", 0, 0, 0
		for {
			p := params("tenant-01", t0.Add(-time.Hour), t0.Add(4*time.Hour))
			p.Set("limit", "10000")
			if cursor != "" {
				p.Set("cursor", cursor)
			}
			body := benchGet(b, ts, p)
			total += len(body)
			pages++
			lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
			n += len(lines) - 1
			var m struct {
				Meta meta `json:"_meta"`
			}
			if err := json.Unmarshal(lines[len(lines)-1], &m); err != nil {
				b.Fatal(err)
			}
			if m.Meta.NextCursor == "" {
				break
			}
			cursor = m.Meta.NextCursor
		}
		if n != records {
			b.Fatalf("%d records read in %d pages, want %d", n, pages, records)
		}
		b.ReportMetric(float64(pages), "pages/op")
		b.SetBytes(int64(total))
	}
}

func benchGet(b *testing.B, ts *httptest.Server, p url.Values) []byte {
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/logs?"+p.Encode(), nil)
	req.Header.Set("Authorization", "Bearer tok-admin")
	res, err := ts.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		b.Fatalf("%d %v %s", res.StatusCode, err, body)
	}
	return body
}
