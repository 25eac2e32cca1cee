package router

import (
	"errors"
	"fmt"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// Config is the router's configuration.
type Config struct {
	Brokers        []string      // Kafka bootstrap brokers
	CatalogPath    string        // metric catalog file
	Group          string        // consumer group
	SourceTopic    string        // raw records
	DLQTopic       string        // rejected records
	BatchSize      int           // records per batch, at most
	BatchWait      time.Duration // how long a batch waits to fill once it has a record
	ReloadInterval time.Duration // how often the catalog file is checked for changes
	// SessionTimeout is how long the group waits for a silent member (e.g. a
	// killed router) before giving its partitions to another.
	SessionTimeout time.Duration
	// DrainTimeout is how long a batch whose production has started may take
	// to finish (produce, acknowledge, commit) after shutdown began. A batch
	// is never abandoned half-produced on SIGTERM: abandoning it would route
	// its records twice after the restart, and the metric jobs count every
	// copy.
	DrainTimeout time.Duration
	// TimeBounds rejects records (to the DLQ, reason out_of_range) whose
	// event time is too far from the Kafka record's timestamp, again after
	// ingress: one Spark watermark serves every tenant (DESIGN.md).
	TimeBounds record.TimeBounds
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Brokers:        []string{"127.0.0.1:9092"},
		CatalogPath:    "metrics-jobs/catalog.yaml",
		Group:          topology.RouterGroup,
		SourceTopic:    topology.RawTopic,
		DLQTopic:       topology.DLQTopic,
		BatchSize:      2000,
		BatchWait:      50 * time.Millisecond,
		ReloadInterval: 2 * time.Second,
		SessionTimeout: 30 * time.Second,
		DrainTimeout:   30 * time.Second,
		TimeBounds:     record.DefaultTimeBounds(),
	}
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one is required"))
	}
	if c.CatalogPath == "" {
		errs = append(errs, errors.New("catalog: a file is required"))
	}
	if c.Group == "" || c.SourceTopic == "" || c.DLQTopic == "" {
		errs = append(errs, errors.New("group, source-topic and dlq-topic must not be empty"))
	}
	if c.BatchSize < 1 || c.BatchSize > 100_000 {
		errs = append(errs, fmt.Errorf("batch-size %d: must be 1-100000", c.BatchSize))
	}
	if c.BatchWait <= 0 {
		errs = append(errs, fmt.Errorf("batch-wait %s: must be > 0", c.BatchWait))
	}
	if c.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("reload-interval %s: must be > 0", c.ReloadInterval))
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("session-timeout %s: must be 6s-5m (the broker's allowed range by default)", c.SessionTimeout))
	}
	if c.DrainTimeout < time.Second {
		errs = append(errs, fmt.Errorf("drain-timeout %s: must be >= 1s", c.DrainTimeout))
	}
	if err := c.TimeBounds.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
