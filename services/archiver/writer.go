package archiver

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/flate"

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
	line       []byte // scratch: a record re-encoded canonically

	z         *compressor
	blockSize int       // uncompressed bytes of a block (blockSizeFor)
	queue     []*block  // blocks handed to z and not yet absorbed, oldest first
	maxQueued int       // len(queue) after handOver: 2 per compression worker
	full      []*bucket // buckets whose absorbed blocks reached MaxFileBytes, to roll
}

// bucket is the part file being filled for one hour. Its records are
// compressed in blocks (see block): buf holds the gzip header and the
// compressed blocks absorbed so far, raw the block being filled.
type bucket struct {
	hour        archive.Hour
	first, last int64
	records     int
	opened      time.Time
	buf         chunks // the compressed part file so far
	raw         []byte // the dictionary (dict bytes) then the records of the next block
	dict        int
	crc         uint32 // CRC-32 of the records handed to the compressor (the gzip trailer)
	size        uint32 // their length, modulo 2^32 (the gzip trailer)
	ending      bool   // its last block is handed over: no record may be added
	closed      bool   // every block and the trailer are in buf
}

// sealed reports whether a flush began: the bucket's stream is ending or
// closed (if the write failed, it is retried from buf); no record may be
// added.
func (b *bucket) sealed() bool { return b.ending }

// newPartWriter returns the writer of one partition; z compresses its
// blocks (one compressor serves every partition of the process).
func newPartWriter(fsys archive.FS, partition int, cfg Config, log *slog.Logger, m *metrics, z *compressor) *partWriter {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &partWriter{
		fs: fsys, partition: partition, cfg: cfg, m: m,
		log:       log.With("partition", partition),
		buckets:   map[archive.Hour]*bucket{},
		known:     map[archive.Hour][]archive.Part{},
		next:      -1,
		nonce:     hex.EncodeToString(b[:]),
		z:         z,
		blockSize: blockSizeFor(cfg.MaxFileBytes),
		maxQueued: 2 * z.workers(),
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
	line := value
	if ts, tenant, ok := record.Head(value); canonical && ok {
		// Ingress validated and encoded it: archived as it is, no second
		// decode (issue 16: decoding was 60% of the archiver's CPU).
		hour = archive.HourOf(tenant, ts)
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
		w.line = rec.AppendJSON(w.line[:0]) // the canonical form
		line = w.line
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
		b = w.open(hour, offset, now)
	}
	if b.sealed() {
		return fmt.Errorf("archiver: %s: a failed flush must finish first", hour.Dir())
	}
	if n := len(b.raw) - b.dict; n > 0 && n+len(line)+1 > w.blockSize {
		w.handOver(b) // before the record: a block fits its buffer (unless one record is larger)
	}
	w.appendRecord(b, line)
	b.last = offset
	b.records++
	w.next = offset + 1
	if err := w.rollFull(ctx); err != nil {
		return err
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
	var due []*bucket
	for _, b := range w.byFirst() {
		if now.Sub(b.opened) >= w.cfg.MaxFileAge {
			due = append(due, b)
		}
	}
	return w.flushEach(ctx, due)
}

// flushAll writes every buffered part file, oldest first offset first (so
// a drain cut short by its deadline still lets the commit move).
func (w *partWriter) flushAll(ctx context.Context) error {
	return w.flushEach(ctx, w.byFirst())
}

// flushEach writes the part files of bs in order. Their last blocks are
// all handed over first, to compress on every worker while the first files
// are written (one by one, each flush would wait for its own last block).
func (w *partWriter) flushEach(ctx context.Context, bs []*bucket) error {
	for _, b := range bs {
		w.end(b)
	}
	for _, b := range bs {
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
	if !b.closed {
		w.seal(b)
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

// abort drops what is buffered: the partition's next owner archives it. It
// waits for the blocks being compressed (CPU work of at most maxQueued
// blocks), so that nothing of the partition outlives it.
func (w *partWriter) abort() {
	for _, j := range w.queue {
		<-j.done
		j.release()
	}
	w.queue = w.queue[:0]
	w.full = w.full[:0]
	for _, b := range w.buckets {
		putRaw(b.raw)
		b.raw = nil
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

// Blocks. A part file is one gzip stream, but its records are compressed in
// blocks on up to Config.CompressWorkers goroutines at once (issue: gzip was
// 84% of the archiver's CPU, all of it on the consuming goroutine, so one
// core worked while the other idled). A block is the records of one bucket
// since the previous block, compressed on its own into a piece of the
// deflate stream that ends on a byte boundary (a sync flush) — the last one
// ends the stream. Each block's compressor starts from the last 32 KiB of
// the bucket's previous block as its dictionary, so it finds the same
// matches one compressor over the whole file would: the file is within a
// few bytes per block of what one gzip writer writes (pigz and
// klauspost/pgzip work the same way). Readers see a standard, single-member
// gzip file.
//
// The consumer only appends records to the bucket's block; a full block is
// handed over and the consumer goes on while it compresses. Results are
// taken back ("absorbed") into the bucket's buf in order, at points that
// depend on the records alone: when the partition has more than maxQueued
// blocks in flight (the oldest, waiting for it if need be), and when the
// bucket is flushed (all of its own). So buffered bytes, rolls and forced
// flushes happen where they happen whatever the scheduling — the memory
// bounds and their tests stay exact — and the backlog of blocks is bounded.
// A file rolls by size once its absorbed blocks reach MaxFileBytes, so it
// may pass it by its blocks still in flight (at most maxQueued+1 blocks,
// compressed: some 150 KiB on a 64 MiB file with 2 workers).
//
// Memory, besides the compressed bytes MaxBufferedBytes bounds: per open
// bucket, the block it fills (at most dictSize+blockSize plus one record,
// 4 KiB until it needs more); per partition, maxQueued+1 blocks in flight
// with their compressed output; per process, CompressWorkers compressor
// states (hash tables and window), where each open bucket held one before.
const (
	// maxBlockSize is the largest block: per-block costs (priming the
	// dictionary takes about what compressing 32 KiB does, the sync flush a
	// few bytes) are small beside it, and a bucket holds at most one block
	// uncompressed.
	maxBlockSize = 256 << 10
	// minBlockSize is the smallest block, for small MaxFileBytes.
	minBlockSize = 1 << 10
	// dictSize is deflate's window: the end of a block that the next
	// block's matches may refer to.
	dictSize = 32 << 10
)

// blockSizeFor returns the block size for part files of maxFileBytes: a
// quarter of it, so that a file rolls by size over several blocks, within
// minBlockSize-maxBlockSize.
func blockSizeFor(maxFileBytes int64) int {
	return int(min(max(maxFileBytes/4, minBlockSize), maxBlockSize))
}

// gzipHeader starts every part file: gzip magic, deflate, no flags, no
// modification time, no extra flags, unknown OS (what gzip.Writer writes).
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// open starts the bucket of hour with the record at offset.
func (w *partWriter) open(hour archive.Hour, offset int64, now time.Time) *bucket {
	b := &bucket{hour: hour, first: offset, opened: now}
	_, _ = b.buf.Write(gzipHeader[:])
	w.grow(int64(len(gzipHeader)))
	w.buckets[hour] = b
	w.m.openBuckets.Inc()
	return b
}

// block is one block of a bucket on its way through the compressor.
type block struct {
	b     *bucket
	raw   []byte // dictionary (dict bytes), then the block's records
	dict  int
	final bool          // the last block of its file: ends the deflate stream
	out   []byte        // the compressed block, once done is closed
	done  chan struct{} // closed by the compressor
}

// release returns the block's buffers to their pools.
func (j *block) release() {
	putRaw(j.raw)
	putOut(j.out)
	j.raw, j.out = nil, nil
}

// firstBlockCap is the room of a bucket's first block until it needs more:
// a bucket of a few records costs a few KiB, not a block.
const firstBlockCap = 4 << 10

// appendRecord appends line and a newline to b's block. Past its room the
// block moves to a full-size buffer at once (append would grow it a
// quarter at a time, copying it each time).
func (w *partWriter) appendRecord(b *bucket, line []byte) {
	if need := len(b.raw) + len(line) + 1; need > cap(b.raw) {
		var grown []byte
		if cap(b.raw) == 0 {
			grown = make([]byte, 0, max(need, min(firstBlockCap, w.blockSize)))
		} else {
			grown = getRaw(max(need, dictSize+w.blockSize))
		}
		grown = append(grown, b.raw...)
		putRaw(b.raw)
		b.raw = grown
	}
	b.raw = append(append(b.raw, line...), '\n')
}

// handOver sends b's records since its last block to the compressor and
// starts b's next block with their last dictSize bytes as its dictionary
// (at most a block's: priming it costs what compressing it does, which
// would dwarf small blocks). Past maxQueued blocks in flight it absorbs the
// oldest, waiting for them.
func (w *partWriter) handOver(b *bucket) {
	j := w.cutBlock(b, false)
	next := getRaw(dictSize + w.blockSize)
	keep := min(len(j.raw), dictSize, w.blockSize)
	b.raw, b.dict = append(next, j.raw[len(j.raw)-keep:]...), keep
	w.z.start(j)
	w.queue = append(w.queue, j)
	for len(w.queue) > w.maxQueued {
		w.absorbOldest()
	}
}

// cutBlock takes b's block for the compressor, updating the gzip trailer's
// checksum and length. b.raw is left to the caller.
func (w *partWriter) cutBlock(b *bucket, final bool) *block {
	data := b.raw[b.dict:]
	b.crc = crc32.Update(b.crc, crc32.IEEETable, data)
	b.size += uint32(len(data))
	j := &block{b: b, raw: b.raw, dict: b.dict, final: final, done: make(chan struct{})}
	if len(data) == 0 {
		j.raw, j.dict = j.raw[:0], 0 // nothing to compress: priming the dictionary would be wasted
	}
	b.raw, b.dict = nil, 0
	return j
}

// absorbOldest takes the oldest block in flight back into its bucket.
func (w *partWriter) absorbOldest() {
	j := w.queue[0]
	w.queue = slices.Delete(w.queue, 0, 1)
	w.absorb(j)
	if j.b.buf.Len() >= w.cfg.MaxFileBytes {
		w.full = append(w.full, j.b)
	}
}

// absorb waits for j's compression and appends the result to its bucket.
func (w *partWriter) absorb(j *block) {
	<-j.done
	before := j.b.buf.Len()
	_, _ = j.b.buf.Write(j.out)
	w.grow(j.b.buf.Len() - before)
	j.release()
}

// rollFull writes the buckets that reached MaxFileBytes (absorbOldest found
// them; a bucket flushed meanwhile is gone from w.buckets).
func (w *partWriter) rollFull(ctx context.Context) error {
	for len(w.full) > 0 {
		b := w.full[0]
		if w.buckets[b.hour] == b {
			if err := w.flush(ctx, b); err != nil {
				return err // b stays in full: the next add retries it
			}
		}
		w.full = slices.Delete(w.full, 0, 1)
	}
	return nil
}

// end hands b's last block over (once): no record may be added to b.
func (w *partWriter) end(b *bucket) {
	if b.ending {
		return
	}
	last := w.cutBlock(b, true)
	w.z.start(last)
	w.queue = append(w.queue, last)
	b.ending = true
}

// seal closes b's gzip stream: its last block handed over, every block of
// b still in flight is absorbed in order and the trailer appended. Other
// buckets' blocks stay in flight.
func (w *partWriter) seal(b *bucket) {
	w.end(b)
	w.queue = slices.DeleteFunc(w.queue, func(j *block) bool {
		if j.b != b {
			return false
		}
		w.absorb(j)
		return true
	})
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], b.crc)
	binary.LittleEndian.PutUint32(trailer[4:], b.size)
	_, _ = b.buf.Write(trailer[:])
	w.grow(int64(len(trailer)))
	b.closed = true
}

// compressor compresses blocks on at most its number of workers at once,
// for every partition of the process: each block on a goroutine of its own
// that waits its turn (channel senders are served in order), so there is
// nothing to start or stop. It holds deflate state only while it
// compresses: a worker's, not an open bucket's.
type compressor struct {
	sem     chan struct{} // a slot per worker
	writers sync.Pool     // *flate.Writer at the compressor's level
	busy    atomic.Int64  // blocks being compressed now
	peak    atomic.Int64  // the most busy at once: never above the workers
}

// newCompressor returns a compressor of workers goroutines at the level
// the archive has always had: klauspost/compress's default (its level 5).
// BenchmarkWriter measured the others on generated records: level 1 makes
// the archive 10% larger (0.126 of the input, not 0.115) for about 1.3-1.5x
// the throughput per CPU second, level 9 14% smaller (0.099) for about a
// quarter of it. The archive is kept 30 days and read by Spark and
// log-peek, and blocks on every core bring the speed: the level stays.
func newCompressor(workers int) *compressor {
	return newCompressorLevel(workers, flate.DefaultCompression)
}

// newCompressorLevel is newCompressor at another level (benchmarks).
func newCompressorLevel(workers, level int) *compressor {
	z := &compressor{sem: make(chan struct{}, workers)}
	z.writers.New = func() any {
		fw, _ := flate.NewWriter(io.Discard, level) // level is valid
		return fw
	}
	return z
}

// workers is the number of blocks compressed at once.
func (z *compressor) workers() int { return cap(z.sem) }

// start compresses j in the background; j.done is closed when j.out holds
// its compressed bytes.
func (z *compressor) start(j *block) {
	go func() {
		z.sem <- struct{}{}
		z.compress(j)
		<-z.sem
		close(j.done)
	}()
}

// compress writes j's records as deflate blocks ending on a byte boundary
// (the last block: ending the stream), with its dictionary as history.
func (z *compressor) compress(j *block) {
	busy := z.busy.Add(1)
	defer z.busy.Add(-1)
	for p := z.peak.Load(); busy > p; p = z.peak.Load() {
		if z.peak.CompareAndSwap(p, busy) {
			break
		}
	}
	fw := z.writers.Get().(*flate.Writer)
	out := sink{b: getOut()}
	fw.ResetDict(&out, j.raw[:j.dict])
	_, _ = fw.Write(j.raw[j.dict:]) // to memory: cannot fail
	if j.final {
		_ = fw.Close()
	} else {
		_ = fw.Flush()
	}
	fw.ResetDict(io.Discard, nil) // keeps neither out nor raw alive in the pool
	z.writers.Put(fw)
	j.out = out.b
}

// sink is an io.Writer appending to a byte slice.
type sink struct{ b []byte }

func (s *sink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// Pools of block buffers, so that blocks do not allocate in the steady
// state. A bucket's first block grows from 4 KiB; later blocks take a
// full-size buffer.
var rawBuffers, outBuffers sync.Pool // *[]byte

func getRaw(n int) []byte {
	if p, ok := rawBuffers.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]byte, 0, n)
}

func putRaw(b []byte) {
	if cap(b) >= dictSize+minBlockSize {
		rawBuffers.Put(&b)
	}
}

func getOut() []byte {
	if p, ok := outBuffers.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

func putOut(b []byte) {
	if b != nil {
		outBuffers.Put(&b)
	}
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
