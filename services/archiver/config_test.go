package archiver

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigMemoryBounds checks the memory bounds at and past their limits.
func TestConfigMemoryBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		wantErr string // "" when valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"open buckets 1", func(c *Config) { c.MaxOpenBuckets = 1 }, ""},
		{"open buckets 0", func(c *Config) { c.MaxOpenBuckets = 0 }, "max-open-buckets 0"},
		{"open buckets negative", func(c *Config) { c.MaxOpenBuckets = -1 }, "max-open-buckets -1"},
		{"open buckets at limit", func(c *Config) { c.MaxOpenBuckets = maxOpenBucketsLimit }, ""},
		{"open buckets past limit", func(c *Config) { c.MaxOpenBuckets = maxOpenBucketsLimit + 1 }, "max-open-buckets 1025"},
		{"buffered = file bytes", func(c *Config) { c.MaxBufferedBytes = c.MaxFileBytes }, ""},
		{"buffered < file bytes", func(c *Config) { c.MaxBufferedBytes = c.MaxFileBytes - 1 }, "max-buffered-bytes 67108863"},
		{"buffered small with small files", func(c *Config) { c.MaxFileBytes, c.MaxBufferedBytes = 1<<10, 1<<10 }, ""},
		{"buffered at limit", func(c *Config) { c.MaxBufferedBytes = maxBufferedBytesLimit }, ""},
		{"buffered past limit", func(c *Config) { c.MaxBufferedBytes = maxBufferedBytesLimit + 1 }, "max-buffered-bytes 17179869185"},
		{"compress workers 1", func(c *Config) { c.CompressWorkers = 1 }, ""},
		{"compress workers 0", func(c *Config) { c.CompressWorkers = 0 }, "compress-workers 0"},
		{"compress workers at limit", func(c *Config) { c.CompressWorkers = maxCompressWorkersLimit }, ""},
		{"compress workers past limit", func(c *Config) { c.CompressWorkers = maxCompressWorkersLimit + 1 }, "compress-workers 33"},
		{"zero", func(c *Config) { c.MaxOpenBuckets, c.MaxBufferedBytes = 0, 0 }, "max-open-buckets 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	// The default is one worker per core, within the limit.
	require.Equal(t, min(runtime.GOMAXPROCS(0), maxCompressWorkersLimit), DefaultConfig().CompressWorkers)
	// Every problem is reported, not the first.
	cfg := DefaultConfig()
	cfg.MaxOpenBuckets, cfg.MaxBufferedBytes = 0, 0
	require.ErrorContains(t, cfg.Validate(), "max-buffered-bytes 0")
}
