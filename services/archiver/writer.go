package archiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/record"
)

// maxKnownHours bounds the cache of archived offset ranges; past it the cache
// is dropped and hours are listed again when next seen.
const maxKnownHours = 4096

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

	buckets map[archive.Hour]*bucket
	known   map[archive.Hour][]archive.Part // part files of this partition per hour, listed lazily
	next    int64                           // offset after the last record handled (-1: none yet)
	nonce   string
	seq     int
}

// bucket is the part file being filled for one hour.
type bucket struct {
	hour        archive.Hour
	first, last int64
	records     int
	opened      time.Time
	buf         bytes.Buffer
	gz          *gzip.Writer
	sealed      bool // compressed stream closed by a flush that has not finished
}

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

// add handles the record at offset. It returns an error only when ctx ended
// before the record could be handled; the record then counts as not seen.
func (w *partWriter) add(ctx context.Context, offset int64, value []byte, now time.Time) error {
	if w.next >= 0 && offset < w.next {
		return nil // delivered twice by the reader: already buffered or archived
	}
	w.m.in.Inc()
	rec, _, err := record.Decode(value)
	if err != nil {
		// The router sends invalid records to the DLQ; the archive holds
		// only records that every consumer accepts.
		w.m.skipped.WithLabelValues("invalid").Inc()
		w.next = offset + 1
		return nil
	}
	hour := archive.HourOf(rec.Tenant, rec.Timestamp)
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
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("archiver: encode record at offset %d: %w", offset, err) // cannot happen for a valid record
	}
	b := w.buckets[hour]
	if b == nil {
		b = &bucket{hour: hour, first: offset, opened: now}
		b.gz, _ = gzip.NewWriterLevel(&b.buf, gzip.DefaultCompression)
		w.buckets[hour] = b
	}
	if b.sealed {
		return fmt.Errorf("archiver: %s: a failed flush must finish first", hour.Dir())
	}
	before := b.buf.Len()
	_, _ = b.gz.Write(append(line, '\n')) // writes to memory
	w.m.buffered.Add(float64(b.buf.Len() - before))
	b.last = offset
	b.records++
	w.next = offset + 1
	if int64(b.buf.Len()) >= w.cfg.MaxFileBytes {
		return w.flush(ctx, b)
	}
	return nil
}

// archived returns the part files of this partition in hour. The first call
// for an hour lists its directory and deletes this partition's leftover
// temporary files there (a crashed writer's; this writer has none open,
// since it writes a file start to finish within one flush).
func (w *partWriter) archived(ctx context.Context, hour archive.Hour) ([]archive.Part, error) {
	if parts, ok := w.known[hour]; ok {
		return parts, nil
	}
	if len(w.known) >= maxKnownHours {
		clear(w.known)
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
	return parts, nil
}

// flushDue writes the part files that reached MaxFileAge.
func (w *partWriter) flushDue(ctx context.Context, now time.Time) error {
	for _, b := range w.buckets {
		if now.Sub(b.opened) >= w.cfg.MaxFileAge {
			if err := w.flush(ctx, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// flushAll writes every buffered part file.
func (w *partWriter) flushAll(ctx context.Context) error {
	for _, b := range w.buckets {
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
	b.sealed = true
	if err := b.gz.Close(); err != nil {
		return fmt.Errorf("archiver: gzip: %w", err) // in memory: cannot happen
	}
	part := archive.Part{Partition: w.partition, First: b.first, Last: b.last}
	final := b.hour.Dir() + "/" + part.Name()
	data := b.buf.Bytes()
	err := w.retry(ctx, "write "+final, func() error {
		w.seq++
		tmp := b.hour.Dir() + "/" + part.TempName(w.nonce+strconv.Itoa(w.seq))
		if err := archive.WriteFile(ctx, w.fs, tmp, data); err != nil {
			return err
		}
		if err := w.fs.Rename(ctx, tmp, final); err != nil {
			// The rename may have happened with its answer lost.
			if _, serr := w.fs.Stat(ctx, tmp); archive.IsNotExist(serr) {
				if fi, ferr := w.fs.Stat(ctx, final); ferr == nil && fi.Size == int64(len(data)) {
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
	w.m.fileBytes.Observe(float64(len(data)))
	w.m.flush.Observe(time.Since(start).Seconds())
	w.m.buffered.Sub(float64(len(data)))
	w.known[b.hour] = append(w.known[b.hour], part)
	delete(w.buckets, b.hour)
	w.log.Debug("part file written", "file", final, "records", b.records, "bytes", len(data))
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
		w.m.buffered.Sub(float64(b.buf.Len()))
	}
	clear(w.buckets)
}

// retry runs fn until it succeeds or ctx ends, backing off exponentially.
// While it retries, the partition counts as paused.
func (w *partWriter) retry(ctx context.Context, what string, fn func() error) error {
	backoff := 100 * time.Millisecond
	paused := false
	defer func() {
		if paused {
			w.m.paused.Dec()
		}
	}()
	for {
		err := fn()
		if err == nil {
			if paused {
				w.log.Info("archive available again", "op", what)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("archiver: %s: %w (gave up: %w)", what, err, ctx.Err())
		}
		if !paused {
			paused = true
			w.m.paused.Inc()
		}
		w.m.retries.Inc()
		w.log.Warn("archive operation failed; consumption paused, retrying", "op", what, "error", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("archiver: %s: %w (gave up: %w)", what, err, ctx.Err())
		case <-t.C:
		}
		backoff = min(backoff*2, w.cfg.MaxBackoff)
	}
}
