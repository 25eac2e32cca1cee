package archiver

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/retry"
)

// maxKnownHours and maxKnownParts bound the cache of archived offset ranges
// (hours, and part files over all hours: forced flushes can write many small
// files to one hour); past either the cache is dropped and hours are listed
// again when next seen.
const (
	maxKnownHours = 4096
	maxKnownParts = 1 << 16
)

// Reasons of a forced flush: a part file written before it reached
// MaxFileBytes or MaxFileAge, to keep a partition within its memory bounds.
const (
	reasonOpenBuckets   = "open_buckets"   // a new hour would exceed MaxOpenBuckets
	reasonBufferedBytes = "buffered_bytes" // the buffers exceed MaxBufferedBytes
)

// gzipWriters recycles gzip writers between part files. Each holds its
// compressor state (hash tables and window: hundreds of KiB, allocated whole),
// so a bucket holds one only while its stream is open and returns it when the
// stream is closed: a flushed bucket costs nothing, and opening a bucket
// rarely allocates. A process-wide cache the GC empties when idle; it holds no
// state of any partition (a writer is Reset before it is put back). The
// compressor is klauspost/compress's gzip: the same format as compress/gzip,
// about twice as fast (issue 16's profile: gzip was half the archiver's CPU).
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.DefaultCompression)
	return zw
}}

// partWriter archives the records of one Kafka partition: it buffers them
// per event-time hour of each tenant, writes part files, and knows which
// offset it may commit. It is not safe for concurrent use; one goroutine
// owns it for as long as it owns the partition.
type partWriter struct {
	fs        archive.FS
	partition int
	cfg       Config
	log       *slog.Logger
	m         *metrics

	buckets    map[archive.Hour]*bucket        // at most cfg.MaxOpenBuckets
	buffered   int64                           // compressed bytes over all buckets, at most cfg.MaxBufferedBytes between calls
	known      map[archive.Hour][]archive.Part // part files of this partition per hour, listed lazily
	knownParts int                             // part files in known
	next       int64                           // offset after the last record handled (-1: none yet)
	nonce      string
	seq        int
	line       []byte // scratch: the record being added, encoded
}

// bucket is the part file being filled for one hour.
type bucket struct {
	hour        archive.Hour
	first, last int64
	records     int
	opened      time.Time
	buf         chunks       // the compressed part file so far
	gz          *gzip.Writer // compresses into buf; nil once a flush closed the stream
}

// sealed reports whether a flush closed the compressed stream without
// finishing (the write is retried from buf; no record may be added).
func (b *bucket) sealed() bool { return b.gz == nil }

func newPartWriter(fsys archive.FS, partition int, cfg Config, log *slog.Logger, m *metrics) *partWriter {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &partWriter{
		fs: fsys, partition: partition, cfg: cfg, m: m,
		log:     log.With("partition", partition),
		buckets: map[archive.Hour]*bucket{},
		known:   map[archive.Hour][]archive.Part{},
		next:    -1,
		nonce:   hex.EncodeToString(b[:]),
	}
}

// add handles the record at offset. canonical says the producer vouches
// that value is the canonical encoding of a valid record
// (record.CanonicalHeader). It returns an error only when ctx ended before
// the record could be handled; the record then counts as not seen.
func (w *partWriter) add(ctx context.Context, offset int64, value []byte, canonical bool, now time.Time) error {
	if w.next >= 0 && offset < w.next {
		return nil // delivered twice by the reader: already buffered or archived
	}
	w.m.in.Inc()
	var hour archive.Hour
	if ts, tenant, ok := record.Head(value); canonical && ok {
		// Ingress validated and encoded it: archived as it is, no second
		// decode (issue 16: decoding was 60% of the archiver's CPU).
		hour = archive.HourOf(tenant, ts)
		w.line = append(append(w.line[:0], value...), '\n')
	} else {
		rec, _, err := record.Decode(value)
		if err != nil {
			// The router sends invalid records to the DLQ; the archive holds
			// only records that every consumer accepts.
			w.m.skipped.WithLabelValues("invalid").Inc()
			w.next = offset + 1
			return nil
		}
		hour = archive.HourOf(rec.Tenant, rec.Timestamp)
		w.line = append(rec.AppendJSON(w.line[:0]), '\n') // the canonical form
	}
	parts, err := w.archived(ctx, hour)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if p.Contains(offset) {
			w.m.skipped.WithLabelValues("already_archived").Inc()
			w.next = offset + 1
			return nil
		}
	}
	b := w.buckets[hour]
	if b == nil {
		for len(w.buckets) >= w.cfg.MaxOpenBuckets {
			// The oldest bucket holds the offset the partition's commit
			// waits for: writing it lets the commit move.
			if err := w.flushOldest(ctx, reasonOpenBuckets); err != nil {
				return err
			}
		}
		b = &bucket{hour: hour, first: offset, opened: now, gz: gzipWriters.Get().(*gzip.Writer)}
		b.gz.Reset(&b.buf)
		w.buckets[hour] = b
		w.m.openBuckets.Inc()
	}
	if b.sealed() {
		return fmt.Errorf("archiver: %s: a failed flush must finish first", hour.Dir())
	}
	before := b.buf.Len()
	_, _ = b.gz.Write(w.line) // writes to memory
	w.grow(b.buf.Len() - before)
	b.last = offset
	b.records++
	w.next = offset + 1
	if b.buf.Len() >= w.cfg.MaxFileBytes {
		if err := w.flush(ctx, b); err != nil {
			return err
		}
	}
	for w.buffered > w.cfg.MaxBufferedBytes && len(w.buckets) > 0 {
		if err := w.flushOldest(ctx, reasonBufferedBytes); err != nil {
			return err
		}
	}
	return nil
}

// grow accounts for n more buffered compressed bytes (n < 0: fewer).
func (w *partWriter) grow(n int64) {
	w.buffered += n
	w.m.buffered.Add(float64(n))
}

// flushOldest writes the bucket holding the oldest first offset, before it
// is due, to keep the partition within its bounds.
func (w *partWriter) flushOldest(ctx context.Context, reason string) error {
	var b *bucket
	for _, c := range w.buckets {
		if b == nil || c.first < b.first {
			b = c
		}
	}
	if b == nil {
		return nil
	}
	if err := w.flush(ctx, b); err != nil {
		return err
	}
	w.m.forcedFlushes.WithLabelValues(reason).Inc()
	w.log.Debug("part file written early", "reason", reason, "hour", b.hour.Dir(), "first", b.first, "last", b.last)
	return nil
}

// byFirst returns the open buckets, oldest first offset first: flushed in
// this order, each flush lets the partition's commit move as far as it can.
func (w *partWriter) byFirst() []*bucket {
	bs := make([]*bucket, 0, len(w.buckets))
	for _, b := range w.buckets {
		bs = append(bs, b)
	}
	slices.SortFunc(bs, func(a, b *bucket) int { return cmp.Compare(a.first, b.first) })
	return bs
}

// archived returns the part files of this partition in hour. The first call
// for an hour lists its directory and deletes this partition's leftover
// temporary files there (a crashed writer's; this writer has none open,
// since it writes a file start to finish within one flush).
func (w *partWriter) archived(ctx context.Context, hour archive.Hour) ([]archive.Part, error) {
	if parts, ok := w.known[hour]; ok {
		return parts, nil
	}
	if len(w.known) >= maxKnownHours || w.knownParts >= maxKnownParts {
		clear(w.known)
		w.knownParts = 0
	}
	var parts []archive.Part
	err := w.retry(ctx, "list "+hour.Dir(), func() error {
		files, temps, err := archive.ListHour(ctx, w.fs, hour)
		if err != nil {
			return err
		}
		parts = parts[:0]
		for _, f := range files {
			if f.Part.Partition == w.partition {
				parts = append(parts, f.Part)
			}
		}
		for _, t := range temps {
			p, _ := archive.ParseTempName(t[len(hour.Dir())+1:])
			if p.Partition != w.partition {
				continue // another partition's writer may be using it
			}
			if err := w.fs.Remove(ctx, t); err != nil && !archive.IsNotExist(err) {
				return err
			}
			w.m.tempsRemoved.Inc()
			w.log.Info("removed leftover temporary file", "file", t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w.known[hour] = parts
	w.knownParts += len(parts)
	return parts, nil
}

// flushDue writes the part files that reached MaxFileAge.
func (w *partWriter) flushDue(ctx context.Context, now time.Time) error {
	for _, b := range w.byFirst() {
		if now.Sub(b.opened) >= w.cfg.MaxFileAge {
			if err := w.flush(ctx, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// flushAll writes every buffered part file, oldest first offset first (so
// a drain cut short by its deadline still lets the commit move).
func (w *partWriter) flushAll(ctx context.Context) error {
	for _, b := range w.byFirst() {
		if err := w.flush(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// flush writes b under a temporary name, renames it to its final name and
// forgets it. Failures are retried with backoff until ctx ends; meanwhile
// consumption of the partition waits.
func (w *partWriter) flush(ctx context.Context, b *bucket) error {
	start := time.Now()
	if !b.sealed() {
		before := b.buf.Len()
		err := b.gz.Close() // writes the last block and the trailer
		releaseGzip(b.gz)
		b.gz = nil
		w.grow(b.buf.Len() - before)
		if err != nil {
			return fmt.Errorf("archiver: gzip: %w", err) // in memory: cannot happen
		}
	}
	part := archive.Part{Partition: w.partition, First: b.first, Last: b.last}
	final := b.hour.Dir() + "/" + part.Name()
	size := b.buf.Len()
	err := w.retry(ctx, "write "+final, func() error {
		w.seq++
		tmp := b.hour.Dir() + "/" + part.TempName(w.nonce+strconv.Itoa(w.seq))
		if err := writeFile(ctx, w.fs, tmp, &b.buf); err != nil {
			return err
		}
		if err := w.fs.Rename(ctx, tmp, final); err != nil {
			// The rename may have happened with its answer lost.
			if _, serr := w.fs.Stat(ctx, tmp); archive.IsNotExist(serr) {
				if fi, ferr := w.fs.Stat(ctx, final); ferr == nil && fi.Size == size {
					return nil
				}
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.m.files.Inc()
	w.m.archived.Add(float64(b.records))
	w.m.fileBytes.Observe(float64(size))
	w.m.flush.Observe(time.Since(start).Seconds())
	w.grow(-size)
	b.buf = chunks{}
	// An hour missing from the cache (dropped meanwhile) is listed again
	// when next seen, and the listing shows this file: a cache entry of
	// this file alone would hide the hour's older files.
	if parts, ok := w.known[b.hour]; ok {
		w.known[b.hour] = append(parts, part)
		w.knownParts++
	}
	delete(w.buckets, b.hour)
	w.m.openBuckets.Dec()
	w.log.Debug("part file written", "file", final, "records", b.records, "bytes", size)
	return nil
}

// releaseGzip returns zw to the pool, detached from the buffer it wrote to.
func releaseGzip(zw *gzip.Writer) {
	zw.Reset(io.Discard)
	gzipWriters.Put(zw)
}

// writeFile writes data to a new file name and closes it; on failure it
// removes what it created (archive.WriteFile, from chunks).
func writeFile(ctx context.Context, fsys archive.FS, name string, data *chunks) error {
	f, err := fsys.Create(ctx, name)
	if err != nil {
		return err
	}
	_, err = data.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rerr := fsys.Remove(rctx, name); rerr != nil && !archive.IsNotExist(rerr) {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("archive: write %s: %w", name, err)
	}
	return nil
}

// commitOffset is the offset this partition may commit: every record below
// it is in a renamed part file or was skipped. -1 when nothing was handled.
func (w *partWriter) commitOffset() int64 {
	off := w.next
	for _, b := range w.buckets {
		off = min(off, b.first)
	}
	return off
}

// abort drops what is buffered: the partition's next owner archives it.
func (w *partWriter) abort() {
	for _, b := range w.buckets {
		if !b.sealed() {
			releaseGzip(b.gz)
			b.gz = nil
		}
		w.m.openBuckets.Dec()
	}
	w.grow(-w.buffered)
	clear(w.buckets)
}

// retry runs fn until it succeeds or ctx ends, backing off exponentially
// up to MaxBackoff. While it retries, the partition counts as paused.
func (w *partWriter) retry(ctx context.Context, what string, fn func() error) error {
	paused := false
	b := retry.Backoff{Max: w.cfg.MaxBackoff, OnRetry: func(_ int, err error, wait time.Duration) {
		if !paused {
			paused = true
			w.m.paused.Inc()
		}
		w.m.retries.Inc()
		w.log.Warn("archive operation failed; consumption paused, retrying", "op", what, "error", err, "backoff", wait)
	}}
	err := b.Do(ctx, fn)
	if paused {
		w.m.paused.Dec()
		if err == nil {
			w.log.Info("archive available again", "op", what)
		}
	}
	if err != nil {
		return fmt.Errorf("archiver: %s: %w", what, err)
	}
	return nil
}

// Sizes of the pieces of a chunks buffer: each piece is as large as the
// buffer so far, from minChunk up to maxChunk.
const (
	minChunk = 1 << 10
	maxChunk = 64 << 10
)

// chunks is an append-only buffer in pieces that are never copied or
// regrown. It holds its length plus less than min(length, maxChunk)+minChunk
// of spare room, where a bytes.Buffer holds up to twice its length (three
// times while it grows): a 64 MiB part file costs 64 MiB, not 128-192.
type chunks struct {
	pieces [][]byte
	n      int64
}

// Len is the number of bytes written.
func (c *chunks) Len() int64 { return c.n }

// Write appends p; it never fails.
func (c *chunks) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(c.pieces) == 0 || len(c.pieces[len(c.pieces)-1]) == cap(c.pieces[len(c.pieces)-1]) {
			c.pieces = append(c.pieces, make([]byte, 0, min(max(c.n, minChunk), maxChunk)))
		}
		last := &c.pieces[len(c.pieces)-1]
		k := min(len(p), cap(*last)-len(*last))
		*last = append(*last, p[:k]...)
		p = p[k:]
		c.n += int64(k)
	}
	return n, nil
}

// WriteTo writes every byte to dst, in order; c is unchanged.
func (c *chunks) WriteTo(dst io.Writer) (int64, error) {
	var total int64
	for _, p := range c.pieces {
		n, err := dst.Write(p)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
