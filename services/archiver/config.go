package archiver

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/hourglass-io/hourglass/internal/topology"
)

// Upper limits of the memory bounds, per partition: 1024 open buckets
// filling their first block at once are about 0.3 GiB of uncompressed
// records alone.
const (
	maxOpenBucketsLimit   = 1024
	maxBufferedBytesLimit = 16 << 30
	// maxCompressWorkersLimit bounds CompressWorkers: each partition may hold
	// 2 blocks per worker in flight, uncompressed and compressed (up to 64
	// blocks of at most 288 KiB each at the limit).
	maxCompressWorkersLimit = 32
)

// Config is the archiver's configuration.
type Config struct {
	Brokers []string // Kafka bootstrap brokers
	Group   string   // consumer group
	Topic   string   // raw records
	// MaxFileBytes rolls a part file once its compressed size reaches it.
	MaxFileBytes int64
	// MaxFileAge rolls a part file this long after its first record arrived:
	// the longest a record waits before it is durable in the archive (and
	// its offset can be committed).
	MaxFileAge time.Duration
	// MaxOpenBuckets bounds the part files one partition fills at once (one
	// per tenant and event-time hour it holds records of); each holds, besides
	// its compressed bytes, the records of its next block: at most 288 KiB
	// uncompressed (4 KiB while it has fewer). A record of a further hour
	// first writes the part file with the oldest first offset (a forced
	// flush).
	MaxOpenBuckets int
	// MaxBufferedBytes bounds the compressed bytes one partition buffers
	// over all its open part files; past it the part files with the oldest
	// first offsets are written first (forced flushes). At least
	// MaxFileBytes, so a single hour can still roll by size.
	MaxBufferedBytes int64
	// CompressWorkers bounds the blocks of part files compressed at once,
	// over every partition of the process: the cores gzip may use, and the
	// compressor states held (one per worker, not per open part file). Each
	// partition hands at most 2 blocks per worker to them before it waits.
	// Default: GOMAXPROCS, at most maxCompressWorkersLimit.
	CompressWorkers int
	// SessionTimeout is how long the group waits for a silent member before
	// giving its partitions to another.
	SessionTimeout time.Duration
	// DrainTimeout bounds the final flush on shutdown; what is not durable by
	// then stays uncommitted and is archived after the restart.
	DrainTimeout time.Duration
	// MaxBackoff caps the wait between retries of a failed archive write.
	MaxBackoff time.Duration
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Brokers:          []string{"127.0.0.1:9092"},
		Group:            topology.ArchiverGroup,
		Topic:            topology.RawTopic,
		MaxFileBytes:     64 << 20,
		MaxFileAge:       5 * time.Minute,
		MaxOpenBuckets:   32,
		MaxBufferedBytes: 64 << 20,
		CompressWorkers:  min(runtime.GOMAXPROCS(0), maxCompressWorkersLimit),
		SessionTimeout:   30 * time.Second,
		DrainTimeout:     30 * time.Second,
		MaxBackoff:       10 * time.Second,
	}
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one is required"))
	}
	if c.Group == "" || c.Topic == "" {
		errs = append(errs, errors.New("group and topic must not be empty"))
	}
	if c.MaxFileBytes < 1<<10 || c.MaxFileBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("max-file-bytes %d: must be 1 KiB-1 GiB", c.MaxFileBytes))
	}
	if c.MaxFileAge < 100*time.Millisecond || c.MaxFileAge > 24*time.Hour {
		errs = append(errs, fmt.Errorf("max-file-age %s: must be 100ms-24h", c.MaxFileAge))
	}
	if c.MaxOpenBuckets < 1 || c.MaxOpenBuckets > maxOpenBucketsLimit {
		errs = append(errs, fmt.Errorf("max-open-buckets %d: must be 1-%d", c.MaxOpenBuckets, maxOpenBucketsLimit))
	}
	if c.MaxBufferedBytes < c.MaxFileBytes || c.MaxBufferedBytes > maxBufferedBytesLimit {
		errs = append(errs, fmt.Errorf("max-buffered-bytes %d: must be max-file-bytes (%d)-%d GiB", c.MaxBufferedBytes, c.MaxFileBytes, maxBufferedBytesLimit>>30))
	}
	if c.CompressWorkers < 1 || c.CompressWorkers > maxCompressWorkersLimit {
		errs = append(errs, fmt.Errorf("compress-workers %d: must be 1-%d", c.CompressWorkers, maxCompressWorkersLimit))
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("session-timeout %s: must be 6s-5m (the broker's allowed range by default)", c.SessionTimeout))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("drain-timeout %s: must be > 0", c.DrainTimeout))
	}
	if c.MaxBackoff < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("max-backoff %s: must be >= 10ms", c.MaxBackoff))
	}
	return errors.Join(errs...)
}
