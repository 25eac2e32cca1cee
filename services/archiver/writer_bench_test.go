package archiver

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/gen"
)

// benchRecords is the input of BenchmarkWriter: generated traffic of 8
// tenants over two event-time hours (16 buckets), as ingress writes it.
func benchRecords(b *testing.B) (lines [][]byte, size int64) {
	b.Helper()
	const n = 60_000
	g := gen.New(gen.Config{Seed: 1, Tenants: 8, Start: time.Date(2026, 1, 1, 0, 40, 0, 0, time.UTC), Rate: 20})
	for range n {
		l, _ := g.NextLine()
		lines = append(lines, l)
		size += int64(len(l)) + 1 // archived with a newline
	}
	return lines, size
}

// BenchmarkWriter measures the writer's CPU path, from records as the
// consumer hands them over to renamed part files in a local directory:
// MB/s of input records, the cores kept busy (CPU time of the process over
// wall time: on a shared machine, MB/s divided by cores is the steadier
// figure) and the archive's size over the input's (out/in). No Kafka and
// no HDFS: what the archiver itself costs per record.
//
//	go test -run '^$' -bench Writer -cpuprofile /tmp/arch.prof ./services/archiver
func BenchmarkWriter(b *testing.B) {
	lines, size := benchRecords(b)
	for _, tc := range benchCases() {
		b.Run(tc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			level := tc.level
			if level == 0 {
				level = flate.DefaultCompression
			}
			root := b.TempDir()
			b.SetBytes(size)
			b.ReportAllocs()
			i := 0
			var dir string
			cpu := benchreport.CPUTime()
			for b.Loop() {
				i++
				dir = filepath.Join(root, strconv.Itoa(i))
				archiveOnce(b, dir, cfg, newCompressorLevel(cfg.CompressWorkers, level), lines)
			}
			b.StopTimer()
			// CPU time over wall time: how many cores the writer kept busy.
			b.ReportMetric(float64(benchreport.CPUTime()-cpu)/float64(b.Elapsed()), "cores")
			b.ReportMetric(float64(dirSize(b, dir))/float64(size), "out/in")
			_ = os.RemoveAll(root)
		})
	}
}

// archiveOnce writes lines (offsets 0..) into a fresh archive at dir and
// flushes every bucket.
func archiveOnce(b *testing.B, dir string, cfg Config, z *compressor, lines [][]byte) {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	fsys, err := archive.NewLocal(dir)
	if err != nil {
		b.Fatal(err)
	}
	w := newPartWriter(fsys, 0, cfg, slog.New(slog.DiscardHandler), newMetrics(prometheus.NewRegistry()), z)
	now := time.Now()
	for off, l := range lines {
		if err := w.add(ctx, int64(off), l, true, now); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.flushAll(ctx); err != nil {
		b.Fatal(err)
	}
	w.abort()
}

// dirSize is the size of every file under dir.
func dirSize(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

type benchCase struct {
	name  string
	edit  func(*Config)
	level int // of the compressor; 0: the writer's (flate.DefaultCompression)
}

// benchCases: one compression worker (only one core compresses, as when
// the consumer compressed every record itself) and the default (one per
// core); then other compression levels (default workers), for their size
// and speed.
func benchCases() []benchCase {
	return []benchCase{
		{name: "workers=1", edit: func(c *Config) { c.CompressWorkers = 1 }},
		{name: "workers=default", edit: func(*Config) {}},
		{name: "level=1", edit: func(*Config) {}, level: 1},
		{name: "level=9", edit: func(*Config) {}, level: 9},
	}
}
