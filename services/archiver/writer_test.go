package archiver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	kgzip "github.com/klauspost/compress/gzip"

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
		w := newPartWriter(fsys, 0, cfg, log, m, newCompressor(cfg.CompressWorkers))
		stopAt := int64(len(lines)) * int64(crash+1) / 4
		for off := commitAt; off < stopAt; off++ {
			require.NoError(t, w.add(ctx, off, lines[off], false, now))
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
	w := newPartWriter(fsys, 0, cfg, log, m, newCompressor(cfg.CompressWorkers))
	for off := commitAt; off < int64(len(lines)); off++ {
		require.NoError(t, w.add(ctx, off, lines[off], false, now))
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

// testWriter returns a writer of partition 0 over a fresh local archive.
func testWriter(t *testing.T, cfg Config) (*partWriter, archive.FS, *metrics) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	m := newMetrics(prometheus.NewRegistry())
	return newPartWriter(fsys, 0, cfg, slog.New(slog.DiscardHandler), m, newCompressor(cfg.CompressWorkers)), fsys, m
}

// lineFor returns the line of a valid record of tenant at ts, with a
// request id unique to i.
func lineFor(t *testing.T, i int, tenant string, ts time.Time) []byte {
	t.Helper()
	r := gen.New(gen.Config{Seed: uint64(i)}).Next()
	r.Tenant, r.Timestamp, r.Host = tenant, ts, tenant+".example.com"
	r.RequestID = fmt.Sprintf("%s-%d", tenant, i)
	b, err := r.MarshalJSON()
	require.NoError(t, err)
	return b
}

// checkBounds asserts the writer is within its configured bounds, as it must
// be between calls.
func checkBounds(t *testing.T, w *partWriter) {
	t.Helper()
	require.LessOrEqual(t, len(w.buckets), w.cfg.MaxOpenBuckets, "open buckets")
	require.LessOrEqual(t, w.buffered, w.cfg.MaxBufferedBytes, "buffered bytes")
	var sum int64
	for _, b := range w.buckets {
		sum += b.buf.Len()
	}
	require.Equal(t, sum, w.buffered, "buffered bytes accounted")
	require.Equal(t, float64(len(w.buckets)), testutil.ToFloat64(w.m.openBuckets))
	require.Equal(t, float64(w.buffered), testutil.ToFloat64(w.m.buffered))
}

// TestWriterOpenBucketsBound fills a writer to MaxOpenBuckets hours: no part
// file is written early. One record of a further hour writes the bucket with
// the oldest first offset, and the commit offset moves past it.
func TestWriterOpenBucketsBound(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, k := range []int{1, 4, DefaultConfig().MaxOpenBuckets} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxOpenBuckets = k
			w, fsys, m := testWriter(t, cfg)
			forced := m.forcedFlushes.WithLabelValues(reasonOpenBuckets)
			hourOf := func(i int) time.Time { return base.Add(time.Duration(i) * time.Hour) }

			off := int64(0)
			for i := range k { // k hours: at the bound
				require.NoError(t, w.add(ctx, off, lineFor(t, int(off), "t1", hourOf(i)), false, time.Now()))
				off++
			}
			checkBounds(t, w)
			require.Len(t, w.buckets, k)
			require.Zero(t, testutil.ToFloat64(forced))
			require.Equal(t, int64(0), w.commitOffset())

			// One more record of an open hour opens nothing.
			require.NoError(t, w.add(ctx, off, lineFor(t, int(off), "t1", hourOf(0)), false, time.Now()))
			off++
			require.Zero(t, testutil.ToFloat64(forced))

			// A further hour: the bucket of offset 0 is written early.
			require.NoError(t, w.add(ctx, off, lineFor(t, int(off), "t1", hourOf(k)), false, time.Now()))
			checkBounds(t, w)
			require.Len(t, w.buckets, k)
			require.Equal(t, 1.0, testutil.ToFloat64(forced))
			parts, _, err := archive.ListHour(ctx, fsys, archive.HourOf("t1", hourOf(0)))
			require.NoError(t, err)
			require.Len(t, parts, 1)
			require.Equal(t, archive.Part{Partition: 0, First: 0, Last: int64(k)}, parts[0].Part)
			oldestOpen := w.next
			for _, b := range w.buckets {
				oldestOpen = min(oldestOpen, b.first)
			}
			require.Positive(t, oldestOpen)
			require.Equal(t, oldestOpen, w.commitOffset(), "the commit moves past the written bucket")
		})
	}
}

// TestWriterBufferedBytesBound runs the same records twice: once with room
// to spare, to learn the buffered size after each record, then with
// MaxBufferedBytes at the largest size reached before it next grows. The
// second run writes nothing early up to that record and writes the oldest
// bucket early at the next growth; at the bound minus one it does so sooner.
func TestWriterBufferedBytesBound(t *testing.T) {
	ctx := context.Background()
	const fileBytes = 32 << 10
	// Padding of random letters: the compressed size grows from the first
	// records on.
	g := gen.New(gen.Config{Seed: 3, Tenants: 3, Start: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Rate: 0.5, RecordSize: 1000})
	var lines [][]byte
	for range 3000 {
		l, _ := g.NextLine()
		lines = append(lines, l)
	}
	run := func(maxBuffered int64, each func(i int, w *partWriter)) *metrics {
		cfg := DefaultConfig()
		cfg.MaxFileBytes = fileBytes
		cfg.MaxBufferedBytes = maxBuffered
		w, _, m := testWriter(t, cfg)
		for i, l := range lines {
			require.NoError(t, w.add(ctx, int64(i), l, false, time.Now()))
			checkBounds(t, w)
			each(i, w)
		}
		return m
	}

	sizes := make([]int64, len(lines))
	probe := run(1<<30, func(i int, w *partWriter) { sizes[i] = w.buffered })
	require.Zero(t, testutil.ToFloat64(probe.forcedFlushes.WithLabelValues(reasonBufferedBytes)))
	// j: the last record before the buffered size first passes its
	// maximum so far, once that maximum is at least fileBytes.
	j, bound := -1, int64(0)
	for i := range len(sizes) - 1 {
		bound = max(bound, sizes[i])
		if bound >= fileBytes && sizes[i+1] > bound {
			j = i
			break
		}
	}
	require.GreaterOrEqual(t, j, 0, "the records never fill more than one file's worth of buffers")

	first := -1
	m := run(bound, func(i int, w *partWriter) {
		if first < 0 && testutil.ToFloat64(w.m.forcedFlushes.WithLabelValues(reasonBufferedBytes)) > 0 {
			first = i
		}
	})
	require.Equal(t, j+1, first, "at the bound (%d bytes) nothing is written early; past it, at once", bound)
	require.Zero(t, testutil.ToFloat64(m.forcedFlushes.WithLabelValues(reasonOpenBuckets)))

	first = -1
	run(bound-1, func(i int, w *partWriter) {
		if first < 0 && testutil.ToFloat64(w.m.forcedFlushes.WithLabelValues(reasonBufferedBytes)) > 0 {
			first = i
		}
	})
	require.GreaterOrEqual(t, first, 0)
	require.LessOrEqual(t, first, j)
}

// liveHeap is the heap in use after a collection. Two collections empty
// sync.Pool (its victim cache survives one).
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// bucketHeap is the stated memory of one open bucket holding one record:
// about 0.8 MiB of gzip state (doc.go), a first chunk and bookkeeping.
const bucketHeap = 1 << 20

// TestWriterManyHoursMemory is the reproduction of issue 12 (finding 5):
// 1 000 records one day apart, each its own tenant and hour, took 770 MiB
// and the commit never moved. Now MaxOpenBuckets open buckets cost at most
// bucketHeap each, the heap stays under 64 MiB throughout, the commit offset
// follows the records, and once flushed nothing stays in memory.
func TestWriterManyHoursMemory(t *testing.T) {
	ctx := context.Background()
	const n = 1000
	cfg := DefaultConfig()
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = lineFor(t, i, fmt.Sprintf("tenant-%02d", i%10), start.Add(time.Duration(i)*24*time.Hour))
	}
	w, fsys, m := testWriter(t, cfg)

	base := liveHeap()
	var peak int64
	for i, l := range lines {
		require.NoError(t, w.add(ctx, int64(i), l, false, time.Now()))
		checkBounds(t, w)
		if i == cfg.MaxOpenBuckets-1 {
			require.Len(t, w.buckets, cfg.MaxOpenBuckets)
			open := liveHeap() - base
			t.Logf("%d open buckets: %.1f MiB", len(w.buckets), float64(open)/(1<<20))
			require.Less(t, open, int64(cfg.MaxOpenBuckets)*bucketHeap, "%d open buckets", cfg.MaxOpenBuckets)
		}
		if i%20 == 0 || i == n-1 {
			peak = max(peak, liveHeap()-base)
		}
	}
	t.Logf("peak heap over %d hours: %.1f MiB", n, float64(peak)/(1<<20))
	require.Less(t, peak, int64(64<<20))
	require.Equal(t, int64(n-cfg.MaxOpenBuckets), w.commitOffset(), "the commit follows the records, MaxOpenBuckets behind")
	require.Equal(t, float64(n-cfg.MaxOpenBuckets), testutil.ToFloat64(m.forcedFlushes.WithLabelValues(reasonOpenBuckets)))

	require.NoError(t, w.flushAll(ctx))
	require.Equal(t, int64(n), w.commitOffset())
	checkBounds(t, w)
	idle := liveHeap() - base
	t.Logf("after the final flush: %.1f MiB", float64(idle)/(1<<20))
	require.Less(t, idle, int64(bucketHeap), "flushed buckets keep no gzip state")
	require.Len(t, readArchive(t, fsys), n)
}

// TestWriterForcedFlushCrashReconcile is TestWriterCrashReconcile with
// bounds small enough that most part files are written early (many small
// files, each a range of a (tenant, hour) that later files of the same hour
// continue): replays after crashes still archive every record exactly once,
// skipping what the forced flushes wrote ahead of the commit offset.
func TestWriterForcedFlushCrashReconcile(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		reason string
		gen    gen.Config
		open   int
		bytes  int64
	}{
		{reason: reasonOpenBuckets, open: 4, bytes: 64 << 20,
			gen: gen.Config{Tenants: 3, Rate: 0.5, Disorder: 20 * time.Minute, LateShare: 0.02, LateBy: 30 * time.Hour}},
		{reason: reasonBufferedBytes, open: 1024, bytes: 32 << 10,
			gen: gen.Config{Tenants: 3, Rate: 0.5, RecordSize: 1000}},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxFileBytes = min(tc.bytes, 32<<10)
			cfg.MaxOpenBuckets = tc.open
			cfg.MaxBufferedBytes = tc.bytes
			tc.gen.Seed, tc.gen.Start, tc.gen.Malformed = 11, start, 0.01
			g := gen.New(tc.gen)
			var lines [][]byte
			want := map[string]int{}
			for range 12_000 {
				l, _ := g.NextLine()
				lines = append(lines, l)
				if rec, _, err := record.Decode(l); err == nil {
					want[rec.RequestID]++
				}
			}
			_, fsys, m := testWriter(t, cfg)
			log := slog.New(slog.DiscardHandler)

			commitAt := int64(0)
			for crash := range 3 {
				w := newPartWriter(fsys, 0, cfg, log, m, newCompressor(cfg.CompressWorkers))
				stopAt := int64(len(lines)) * int64(crash+1) / 4
				for off := commitAt; off < stopAt; off++ {
					require.NoError(t, w.add(ctx, off, lines[off], false, time.Now()))
					checkBounds(t, w)
				}
				c := w.commitOffset()
				require.Greater(t, c, commitAt, "forced flushes move the commit")
				commitAt = c
				w.abort() // the crash: buffers lost, metrics as a restarted process sees them
			}
			w := newPartWriter(fsys, 0, cfg, log, m, newCompressor(cfg.CompressWorkers))
			for off := commitAt; off < int64(len(lines)); off++ {
				require.NoError(t, w.add(ctx, off, lines[off], false, time.Now()))
			}
			require.NoError(t, w.flushAll(ctx))
			require.Equal(t, int64(len(lines)), w.commitOffset())

			require.Equal(t, want, readArchive(t, fsys), "every valid record exactly once")
			forced := testutil.ToFloat64(m.forcedFlushes.WithLabelValues(tc.reason))
			t.Logf("%v forced flushes, %v files, %v records skipped as archived", forced,
				testutil.ToFloat64(m.files), testutil.ToFloat64(m.skipped.WithLabelValues("already_archived")))
			require.Positive(t, forced)
			require.Positive(t, testutil.ToFloat64(m.skipped.WithLabelValues("already_archived")), "the replays met records written early")
		})
	}
}

// TestWriterCacheDroppedKeepsOlderFiles: when the cache of archived ranges is
// dropped while a bucket is open, the bucket's flush must not leave a cache
// entry holding its file alone, hiding older files of the hour that cover
// offsets still to come.
func TestWriterCacheDroppedKeepsOlderFiles(t *testing.T) {
	ctx := context.Background()
	h := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	g := h.Add(time.Hour)
	lines := make([][]byte, 13)
	for i := range lines {
		ts := g
		if i == 0 || i >= 10 {
			ts = h
		}
		lines[i] = lineFor(t, i, "t1", ts)
	}
	w1, fsys, m := testWriter(t, DefaultConfig())
	for off := 10; off < 13; off++ { // an earlier process archived 10-12, then crashed before committing
		require.NoError(t, w1.add(ctx, int64(off), lines[off], false, time.Now()))
	}
	require.NoError(t, w1.flushAll(ctx))

	w := newPartWriter(fsys, 0, DefaultConfig(), slog.New(slog.DiscardHandler), m, newCompressor(DefaultConfig().CompressWorkers))
	require.NoError(t, w.add(ctx, 0, lines[0], false, time.Now())) // lists the hour: 10-12 known
	clear(w.known)                                                 // the cache is dropped (too many hours or parts)
	w.knownParts = 0
	require.NoError(t, w.flushAll(ctx))
	for off := 1; off < len(lines); off++ {
		require.NoError(t, w.add(ctx, int64(off), lines[off], false, time.Now()))
	}
	require.NoError(t, w.flushAll(ctx))
	got := readArchive(t, fsys)
	require.Len(t, got, len(lines))
	for id, c := range got {
		require.Equal(t, 1, c, id)
	}
}

// TestChunks checks the buffer gives back what was written and keeps its
// spare room under its stated bound.
func TestChunks(t *testing.T) {
	for _, sizes := range [][]int{{0}, {1}, {minChunk}, {minChunk + 1}, {maxChunk, 1}, {3 * maxChunk}, {100, 5000, 70_000, 1, 200_000}} {
		t.Run(fmt.Sprint(sizes), func(t *testing.T) {
			var c chunks
			var want []byte
			for i, n := range sizes {
				p := []byte(strings.Repeat(string(rune('a'+i)), n))
				k, err := c.Write(p)
				require.NoError(t, err)
				require.Equal(t, n, k)
				want = append(want, p...)
				var spare int64
				for _, piece := range c.pieces {
					spare += int64(cap(piece) - len(piece))
				}
				require.Less(t, spare, min(c.Len(), maxChunk)+minChunk)
			}
			require.Equal(t, int64(len(want)), c.Len())
			// Pieces double from minChunk to maxChunk: few, even for one large write.
			require.LessOrEqual(t, len(c.pieces), 8+int(c.Len()/maxChunk))
			var got strings.Builder
			k, err := c.WriteTo(&got)
			require.NoError(t, err)
			require.Equal(t, int64(len(want)), k)
			require.Equal(t, string(want), got.String())
		})
	}
}

// A record ingress marked canonical is archived as it is (no decode: the
// mark is ingress's promise, and only ingress writes it); an unmarked one is
// decoded, validated and re-encoded canonically, or skipped if invalid; a
// marked one whose head does not read as canonical is decoded too.
func TestWriterCanonicalMark(t *testing.T) {
	ctx := context.Background()
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	m := newMetrics(prometheus.NewRegistry())
	w := newPartWriter(fsys, 0, DefaultConfig(), slog.New(slog.DiscardHandler), m, newCompressor(DefaultConfig().CompressWorkers))

	g := gen.New(gen.Config{Seed: 9, Tenants: 1, Start: time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC), Rate: 1})
	r1, r2, r3 := g.Next(), g.Next(), g.Next()
	// Marked: kept byte for byte, even a member a decode would drop (which
	// ingress never writes): proof that it was not decoded.
	marked := append(r1.AppendJSON(nil)[:len(r1.AppendJSON(nil))-1], `,"not_a_field":1}`...)
	// r2 in another member order: valid, not canonical.
	reordered := []byte(fmt.Sprintf(`{"tenant":%q,"timestamp":%q,"method":"GET","status":200,"bytes_in":1,"bytes_out":2,"duration_ms":3,"request_id":%q}`,
		r2.Tenant, r2.Timestamp.Format(time.RFC3339Nano), r2.RequestID))
	markedButReordered := []byte(fmt.Sprintf(`{"tenant":%q,"timestamp":%q,"method":"GET","status":200,"bytes_in":1,"bytes_out":2,"duration_ms":3,"request_id":%q}`,
		r3.Tenant, r3.Timestamp.Format(time.RFC3339Nano), r3.RequestID))
	unmarkedInvalid := []byte(`{"timestamp":"2026-01-01T00:10:05Z","tenant":"t"}`) // no method, no status
	require.NoError(t, w.add(ctx, 0, marked, true, time.Now()))
	require.NoError(t, w.add(ctx, 1, reordered, false, time.Now()))
	require.NoError(t, w.add(ctx, 2, markedButReordered, true, time.Now()))
	require.NoError(t, w.add(ctx, 3, unmarkedInvalid, false, time.Now()))
	require.NoError(t, w.flushAll(ctx))

	h := archive.HourOf(r1.Tenant, r1.Timestamp)
	parts, _, err := archive.ListHour(ctx, fsys, h)
	require.NoError(t, err)
	require.Len(t, parts, 1)
	f, err := fsys.Open(ctx, parts[0].Path())
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	body, err := io.ReadAll(zr)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	require.Len(t, lines, 3, "the invalid line is not archived")
	require.Equal(t, string(marked), lines[0], "a marked record as it came")
	for i, s := range lines[1:] {
		rec, _, err := record.Decode([]byte(s))
		require.NoError(t, err)
		require.Equal(t, string(rec.AppendJSON(nil)), s, "line %d re-encoded canonically", i+2)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(m.skipped.WithLabelValues("invalid")))
}

// TestWriterBlocksMakeOneGzipStream: a part file compressed in blocks on
// several workers is one gzip member (what a single gzip writer writes, for
// readers that stop after the first member) holding the records in offset
// order — with blocks of the smallest size, records larger than a block,
// and a size within 1% of what one gzip writer (the writer's before blocks)
// writes.
func TestWriterBlocksMakeOneGzipStream(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		fileBytes  int64
		recordSize int // 0: gen's own
		records    int
	}{
		{"min blocks", 1 << 10, 0, 1000},
		{"records larger than a block", 1 << 10, 3000, 500},
		{"max blocks", 64 << 20, 0, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.MaxFileBytes, cfg.CompressWorkers = tc.fileBytes, 2
			w, fsys, _ := testWriter(t, cfg)
			g := gen.New(gen.Config{Seed: 5, Tenants: 1, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Rate: 10, RecordSize: tc.recordSize})
			var want []byte
			for off := range tc.records {
				l, _ := g.NextLine()
				require.NoError(t, w.add(ctx, int64(off), l, true, time.Now()))
				want = append(append(want, l...), '\n')
			}
			require.NoError(t, w.flushAll(ctx))

			h := archive.HourOf("tenant-01", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			parts, _, err := archive.ListHour(ctx, fsys, h)
			require.NoError(t, err)
			var got []byte
			var size int64
			for _, p := range parts {
				r, err := fsys.Open(ctx, p.Path())
				require.NoError(t, err)
				zr, err := gzip.NewReader(r)
				require.NoError(t, err)
				zr.Multistream(false)
				body, err := io.ReadAll(zr) // checks the trailer's CRC and length
				require.NoError(t, err)
				require.ErrorIs(t, zr.Reset(r), io.EOF, "%s: one gzip member, nothing after it", p.Path())
				require.NoError(t, r.Close())
				got = append(got, body...)
				size += p.Size
			}
			require.Equal(t, string(want), string(got), "every record once, in offset order")
			t.Logf("%d part files, %d blocks of %d bytes each", len(parts), len(want)/w.blockSize, w.blockSize)

			if len(parts) == 1 { // the same bytes through one gzip writer
				var one bytes.Buffer
				zw, err := kgzip.NewWriterLevel(&one, kgzip.DefaultCompression)
				require.NoError(t, err)
				_, _ = zw.Write(want)
				require.NoError(t, zw.Close())
				t.Logf("%d bytes in blocks, %d through one writer", size, one.Len())
				require.InEpsilon(t, one.Len(), size, 0.01)
			}
		})
	}
}

// TestWriterCompressWorkersBound runs partitions sharing one compressor, as
// an archiver's do, at 1 worker and at the limit: the blocks compressed at
// once never pass the bound, and every record is archived once.
func TestWriterCompressWorkersBound(t *testing.T) {
	ctx := context.Background()
	const partitions = 3
	for _, workers := range []int{1, maxCompressWorkersLimit} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.CompressWorkers = workers
			cfg.MaxFileBytes = 16 << 10 // blocks of 4 KiB: many blocks in flight
			require.NoError(t, cfg.Validate())
			fsys, err := archive.NewLocal(t.TempDir())
			require.NoError(t, err)
			m := newMetrics(prometheus.NewRegistry())
			z := newCompressor(cfg.CompressWorkers)
			want := map[string]int{}
			lines := make([][][]byte, partitions)
			for p := range partitions {
				g := gen.New(gen.Config{Seed: uint64(p + 1), Tenants: 4, Start: time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC), Rate: 5})
				for range 6000 {
					l, _ := g.NextLine()
					rec, _, err := record.Decode(l)
					require.NoError(t, err)
					want[rec.RequestID]++
					lines[p] = append(lines[p], l)
				}
			}
			errs := make(chan error, partitions)
			for p := range partitions {
				w := newPartWriter(fsys, p, cfg, slog.New(slog.DiscardHandler), m, z)
				require.Equal(t, 2*workers, w.maxQueued)
				go func() {
					for off, l := range lines[p] {
						if err := w.add(ctx, int64(off), l, true, time.Now()); err != nil {
							errs <- err
							return
						}
						if len(w.queue) > w.maxQueued {
							errs <- fmt.Errorf("partition %d: %d blocks in flight", p, len(w.queue))
							return
						}
					}
					errs <- w.flushAll(ctx)
				}()
			}
			for range partitions {
				require.NoError(t, <-errs)
			}
			t.Logf("at most %d blocks compressed at once", z.peak.Load())
			require.LessOrEqual(t, z.peak.Load(), int64(workers))
			require.Positive(t, z.peak.Load())
			require.Equal(t, want, readArchive(t, fsys), "every record exactly once")
		})
	}
}
