package logpeek

import (
	"errors"
	"fmt"
	"time"
)

// Config is logpeek's configuration.
type Config struct {
	Listen string // API address
	// MaxSpan is the longest from-to range of one /v1/logs request.
	MaxSpan time.Duration
	// MaxPartitionsSpan is the longest from-to range of one /v1/partitions request.
	MaxPartitionsSpan time.Duration
	// MaxScanBytes bounds the compressed archive bytes one request reads.
	MaxScanBytes int64
	// Deadline bounds the time one request may take.
	Deadline     time.Duration
	DefaultLimit int // records per response when limit is not given
	MaxLimit     int // largest limit accepted
	// MaxResponseBytes bounds the record bytes of one /v1/logs answer (and
	// so the records a request holds in memory); an answer that reaches it
	// ends with a cursor. The first record of an answer is always sent.
	MaxResponseBytes int64
	// MaxConcurrent bounds the requests reading the archive at once; more
	// get 503 overloaded.
	MaxConcurrent int
	// CursorTTL is how long a cursor is accepted after it was issued.
	CursorTTL time.Duration
	// PageCacheBytes bounds the page cache: what pages stopped inside an
	// hour left of it, kept for the next page of the same query (doc.go,
	// "Page cache"). 0 disables it.
	PageCacheBytes int64
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Listen:            "127.0.0.1:8090",
		MaxSpan:           24 * time.Hour,
		MaxPartitionsSpan: 31 * 24 * time.Hour,
		MaxScanBytes:      1 << 30,
		Deadline:          30 * time.Second,
		DefaultLimit:      100,
		MaxLimit:          10_000,
		MaxResponseBytes:  16 << 20,
		MaxConcurrent:     8,
		CursorTTL:         24 * time.Hour,
		PageCacheBytes:    256 << 20,
	}
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: an address is required"))
	}
	if c.MaxSpan < time.Minute {
		errs = append(errs, fmt.Errorf("max-span %s: must be >= 1m", c.MaxSpan))
	}
	if c.MaxPartitionsSpan < time.Hour {
		errs = append(errs, fmt.Errorf("max-partitions-span %s: must be >= 1h", c.MaxPartitionsSpan))
	}
	if c.MaxScanBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("max-scan-bytes %d: must be >= 1 KiB", c.MaxScanBytes))
	}
	if c.Deadline < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("deadline %s: must be >= 100ms", c.Deadline))
	}
	if c.MaxLimit < 1 || c.DefaultLimit < 1 || c.DefaultLimit > c.MaxLimit {
		errs = append(errs, fmt.Errorf("default-limit %d, max-limit %d: want 1 <= default <= max", c.DefaultLimit, c.MaxLimit))
	}
	if c.MaxResponseBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("max-response-bytes %d: must be >= 1 KiB", c.MaxResponseBytes))
	}
	if c.MaxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("max-concurrent %d: must be >= 1", c.MaxConcurrent))
	}
	if c.CursorTTL < time.Minute {
		errs = append(errs, fmt.Errorf("cursor-ttl %s: must be >= 1m", c.CursorTTL))
	}
	if c.PageCacheBytes < 0 {
		errs = append(errs, fmt.Errorf("page-cache-bytes %d: must be >= 0 (0 disables the cache)", c.PageCacheBytes))
	}
	return errors.Join(errs...)
}
