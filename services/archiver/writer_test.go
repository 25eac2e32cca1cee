package archiver

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
)

// kafka-go's default transport (used by the Kafka clients of stacktest in
// the integration tests) keeps a connection pool for the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*connPool).discover"),
		goleak.IgnoreTopFunction("github.com/segmentio/kafka-go.(*conn).run"))
}

// TestWriterCrashReconcile feeds a partition to a writer that "crashes" (is
// dropped with buffers unflushed and a temporary file left behind), then
// replays from the offset it could commit into a fresh writer, as Kafka
// does after a restart, and checks every valid record is archived once.
func TestWriterCrashReconcile(t *testing.T) {
	ctx := context.Background()
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.MaxFileBytes = 4 << 10
	m := newMetrics(prometheus.NewRegistry())
	log := slog.New(slog.DiscardHandler)

	g := gen.New(gen.Config{Seed: 7, Tenants: 3, Start: time.Date(2026, 1, 1, 0, 50, 0, 0, time.UTC), Rate: 2, Malformed: 0.02})
	var lines [][]byte
	want := map[string]int{}
	for range 20_000 {
		l, _ := g.NextLine()
		lines = append(lines, l)
		if rec, _, err := record.Decode(l); err == nil {
			want[rec.RequestID]++
		}
	}

	now := time.Now()
	commitAt := int64(0)
	for crash := range 3 {
		w := newPartWriter(fsys, 0, cfg, log, m)
		stopAt := int64(len(lines)) * int64(crash+1) / 4
		for off := commitAt; off < stopAt; off++ {
			require.NoError(t, w.add(ctx, off, lines[off], now))
		}
		// The crash: buffers lost, a half-written temporary file left over.
		c := w.commitOffset()
		require.GreaterOrEqual(t, c, commitAt)
		require.LessOrEqual(t, c, stopAt)
		commitAt = c
		rec, _, err := record.Decode(lines[c])
		if err == nil {
			h := archive.HourOf(rec.Tenant, rec.Timestamp)
			require.NoError(t, archive.WriteFile(ctx, fsys, h.Dir()+"/"+archive.Part{Partition: 0, First: c, Last: c + 5}.TempName("crashed"), []byte("garbage")))
		}
	}
	w := newPartWriter(fsys, 0, cfg, log, m)
	for off := commitAt; off < int64(len(lines)); off++ {
		require.NoError(t, w.add(ctx, off, lines[off], now))
	}
	require.NoError(t, w.flushAll(ctx))
	require.Equal(t, int64(len(lines)), w.commitOffset())

	got := readArchive(t, fsys)
	require.Equal(t, want, got, "every valid record exactly once")
	require.Positive(t, testutil.ToFloat64(m.skipped.WithLabelValues("already_archived")), "the replay met archived records")
}

// readArchive counts request ids over every part file, checking that no
// temporary file is left and that offset ranges do not overlap.
func readArchive(t *testing.T, fsys archive.FS) map[string]int {
	t.Helper()
	ctx := context.Background()
	tenants, err := fsys.ReadDir(ctx, ".")
	require.NoError(t, err)
	got := map[string]int{}
	for _, te := range tenants {
		tenant := strings.TrimPrefix(te.Name, "tenant=")
		hours, err := archive.ListHours(ctx, fsys, tenant, time.Unix(0, 0), time.Now().Add(100*365*24*time.Hour))
		require.NoError(t, err)
		for _, h := range hours {
			parts, temps, err := archive.ListHour(ctx, fsys, h)
			require.NoError(t, err)
			require.Empty(t, temps, "temporary files left in %s", h)
			for i, p := range parts {
				if i > 0 && parts[i-1].Part.Partition == p.Part.Partition {
					require.Less(t, parts[i-1].Part.Last, p.Part.First, "overlapping ranges in %s", h)
				}
				r, err := fsys.Open(ctx, p.Path())
				require.NoError(t, err)
				zr, err := gzip.NewReader(r)
				require.NoError(t, err)
				sc := bufio.NewScanner(zr)
				for sc.Scan() {
					var rec record.Record
					require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
					require.Equal(t, h, archive.HourOf(rec.Tenant, rec.Timestamp))
					got[rec.RequestID]++
				}
				require.NoError(t, sc.Err())
				_, _ = io.Copy(io.Discard, zr)
				r.Close()
			}
		}
	}
	return got
}
