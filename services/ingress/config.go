package ingress

import (
	"errors"
	"fmt"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Config is the ingress configuration. Zero limits are invalid: every limit
// has a safe default.
type Config struct {
	ListenAddr        string        // the intake listener (/v1/logs, /healthz, /readyz, /openapi.json)
	KeysFile          string        // API keys, SHA-256 hashed (see keys.go)
	KeysReload        time.Duration // how often the keys file is checked for changes
	MaxBodyBytes      int64         // request body as sent (compressed)
	MaxInflatedBytes  int64         // body after gzip decompression
	MaxRecords        int           // records per request
	MaxLineBytes      int           // one record
	TenantRate        float64       // records per second per tenant
	TenantBurst       int           // records a tenant may send at once
	MaxFuture         time.Duration // event time at most this far after the ingress clock (record.TimeBounds)
	MaxPast           time.Duration // event time at most this far before the ingress clock
	MaxConcurrent     int           // requests reading or writing at once; more get 503 overloaded
	MaxInflightBytes  int64         // bytes all requests hold at once (line buffers, records kept for the sink)
	SinkTimeout       time.Duration // how long a request waits for the sink
	RetryAfter        time.Duration // Retry-After sent with 503
	ShutdownTimeout   time.Duration // drain time for in-flight requests on SIGTERM
	ReadHeaderTimeout time.Duration
}

// DefaultConfig returns safe defaults.
func DefaultConfig() Config {
	return Config{
		ListenAddr:        "127.0.0.1:8080",
		KeysFile:          "",
		KeysReload:        5 * time.Second,
		MaxBodyBytes:      8 << 20,
		MaxInflatedBytes:  64 << 20,
		MaxRecords:        10_000,
		MaxLineBytes:      64 << 10,
		TenantRate:        20_000,
		TenantBurst:       40_000,
		MaxFuture:         record.DefaultMaxFuture,
		MaxPast:           record.DefaultMaxPast,
		MaxConcurrent:     64,
		MaxInflightBytes:  256 << 20,
		SinkTimeout:       10 * time.Second,
		RetryAfter:        5 * time.Second,
		ShutdownTimeout:   30 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
	}
}

// Validate reports every problem.
func (c Config) Validate() error {
	var errs []error
	if c.ListenAddr == "" {
		errs = append(errs, errors.New("api-addr: required"))
	}
	if c.KeysFile == "" {
		errs = append(errs, errors.New("keys-file: required (API keys with their tenants, SHA-256 hashed)"))
	}
	for _, l := range []struct {
		name string
		v    int64
	}{{"max-body-bytes", c.MaxBodyBytes}, {"max-inflated-bytes", c.MaxInflatedBytes},
		{"max-records", int64(c.MaxRecords)}, {"max-line-bytes", int64(c.MaxLineBytes)}, {"tenant-burst", int64(c.TenantBurst)},
		{"max-concurrent", int64(c.MaxConcurrent)}, {"max-inflight-bytes", c.MaxInflightBytes}} {
		if l.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0", l.name))
		}
	}
	if c.MaxInflatedBytes < c.MaxBodyBytes {
		errs = append(errs, errors.New("max-inflated-bytes: must be >= max-body-bytes"))
	}
	if c.MaxInflightBytes < c.MaxInflatedBytes {
		errs = append(errs, errors.New("max-inflight-bytes: must be >= max-inflated-bytes, or a full request could never pass"))
	}
	if err := c.timeBounds().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.TenantRate <= 0 {
		errs = append(errs, errors.New("tenant-rate: must be > 0"))
	}
	if c.TenantBurst < c.MaxRecords {
		errs = append(errs, errors.New("tenant-burst: must be >= max-records, or a full request could never pass"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"keys-reload", c.KeysReload}, {"sink-timeout", c.SinkTimeout}, {"retry-after", c.RetryAfter},
		{"shutdown-timeout", c.ShutdownTimeout}, {"read-header-timeout", c.ReadHeaderTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be > 0", d.name))
		}
	}
	return errors.Join(errs...)
}

func (c Config) timeBounds() record.TimeBounds {
	return record.TimeBounds{MaxFuture: c.MaxFuture, MaxPast: c.MaxPast}
}
