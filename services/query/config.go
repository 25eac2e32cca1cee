package query

import (
	"errors"
	"fmt"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog/archivequery"
)

// Config is the query service's configuration.
type Config struct {
	Listen string // API address
	// Limits bound every size a query controls.
	Limits archivequery.Limits
	// SyncDefault is the wait of POST /v1/query without ?wait; SyncMax caps
	// any ?wait.
	SyncDefault time.Duration
	SyncMax     time.Duration
	// MaxJobsPerTenant bounds a tenant's queued plus running jobs (more get
	// 429 with Retry-After); MaxRunningPerTenant its running ones.
	MaxJobsPerTenant    int
	MaxRunningPerTenant int
	// MaxJobs bounds queued plus running jobs of all tenants; MaxRunning the
	// jobs Spark runs at once.
	MaxJobs    int
	MaxRunning int
	// JobTimeout bounds one job's run on Spark.
	JobTimeout time.Duration
	// ResultTTL is how long results are kept after a job ends; JobTTL how
	// long its record is.
	ResultTTL time.Duration
	JobTTL    time.Duration
	// InlineRows is the largest row limit whose rows the service collects
	// from Spark (and the largest of a synchronous query); a job with a
	// larger limit has Spark write its rows to the archive's file system.
	InlineRows int
	// PageRows is the default and MaxPageRows the largest rows of one
	// result page.
	PageRows    int
	MaxPageRows int
	// MaxListJobs bounds the jobs of one list answer.
	MaxListJobs int
	// RetryAfter is the Retry-After of a 429.
	RetryAfter time.Duration
	// DrainTimeout bounds the wait for running jobs at shutdown; the jobs
	// still running then are interrupted and marked failed.
	DrainTimeout time.Duration
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Listen:              "127.0.0.1:8095",
		Limits:              archivequery.DefaultLimits(),
		SyncDefault:         10 * time.Second,
		SyncMax:             30 * time.Second,
		MaxJobsPerTenant:    8,
		MaxRunningPerTenant: 2,
		MaxJobs:             200,
		MaxRunning:          8,
		JobTimeout:          10 * time.Minute,
		ResultTTL:           24 * time.Hour,
		JobTTL:              7 * 24 * time.Hour,
		InlineRows:          10_000,
		PageRows:            1000,
		MaxPageRows:         10_000,
		MaxListJobs:         100,
		RetryAfter:          5 * time.Second,
		DrainTimeout:        30 * time.Second,
	}
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: an address is required"))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SyncDefault < 100*time.Millisecond || c.SyncMax < c.SyncDefault || c.SyncMax > 5*time.Minute {
		errs = append(errs, fmt.Errorf("sync-default %s, sync-max %s: want 100ms <= default <= max <= 5m", c.SyncDefault, c.SyncMax))
	}
	if c.MaxRunningPerTenant < 1 || c.MaxJobsPerTenant < c.MaxRunningPerTenant {
		errs = append(errs, fmt.Errorf("max-running-per-tenant %d, max-jobs-per-tenant %d: want 1 <= running <= jobs", c.MaxRunningPerTenant, c.MaxJobsPerTenant))
	}
	if c.MaxRunning < 1 || c.MaxJobs < c.MaxRunning || c.MaxJobs < c.MaxJobsPerTenant {
		errs = append(errs, fmt.Errorf("max-running %d, max-jobs %d: want 1 <= running <= jobs, and jobs >= max-jobs-per-tenant", c.MaxRunning, c.MaxJobs))
	}
	if c.JobTimeout < time.Second {
		errs = append(errs, fmt.Errorf("job-timeout %s: must be >= 1s", c.JobTimeout))
	}
	if c.ResultTTL < time.Minute || c.JobTTL < c.ResultTTL {
		errs = append(errs, fmt.Errorf("result-ttl %s, job-ttl %s: want 1m <= result-ttl <= job-ttl", c.ResultTTL, c.JobTTL))
	}
	if c.InlineRows < 1 || c.InlineRows > c.Limits.MaxLimit || c.InlineRows > 1_000_000 {
		errs = append(errs, fmt.Errorf("inline-rows %d: must be in [1, min(max-limit %d, 1000000)]", c.InlineRows, c.Limits.MaxLimit))
	}
	if c.PageRows < 1 || c.MaxPageRows < c.PageRows {
		errs = append(errs, fmt.Errorf("page-rows %d, max-page-rows %d: want 1 <= default <= max", c.PageRows, c.MaxPageRows))
	}
	if c.MaxListJobs < 1 {
		errs = append(errs, fmt.Errorf("max-list-jobs %d: must be >= 1", c.MaxListJobs))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, fmt.Errorf("retry-after %s: must be >= 1s", c.RetryAfter))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("drain-timeout %s: must be >= 0", c.DrainTimeout))
	}
	return errors.Join(errs...)
}
