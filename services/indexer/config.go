package indexer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/topology"
)

// DefaultDataStream is the raw-log data stream: logs-<dataset>-<namespace>.
const DefaultDataStream = "logs-" + Dataset + "-default"

// Config is the indexer's configuration.
type Config struct {
	Brokers    []string // Kafka bootstrap brokers
	Group      string   // consumer group
	Topic      string   // raw records
	DLQTopic   string   // documents the cluster refuses for good
	ESURLs     []string // Elasticsearch or OpenSearch
	ESUsername string
	ESPassword string
	DataStream string        // logs-hourglass.traffic-<namespace>
	BatchSize  int           // records per bulk request, at most
	BatchWait  time.Duration // how long a batch waits to fill once it has a record
	// SessionTimeout is how long the group waits for a silent member.
	SessionTimeout time.Duration
	MaxBackoff     time.Duration // longest wait between bulk retries
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Brokers:        []string{"127.0.0.1:9092"},
		Group:          topology.IndexerGroup,
		Topic:          topology.RawTopic,
		DLQTopic:       topology.DLQTopic,
		ESURLs:         []string{"http://127.0.0.1:9200"},
		DataStream:     DefaultDataStream,
		BatchSize:      2000,
		BatchWait:      200 * time.Millisecond,
		SessionTimeout: 30 * time.Second,
		MaxBackoff:     30 * time.Second,
	}
}

// namespace is the data stream's namespace.
func (c Config) namespace() string {
	return strings.TrimPrefix(c.DataStream, "logs-"+Dataset+"-")
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one is required"))
	}
	if len(c.ESURLs) == 0 {
		errs = append(errs, errors.New("es-url: at least one is required"))
	}
	if c.Group == "" || c.Topic == "" || c.DLQTopic == "" {
		errs = append(errs, errors.New("group, source-topic and dlq-topic must not be empty"))
	}
	if ns := c.namespace(); !strings.HasPrefix(c.DataStream, "logs-"+Dataset+"-") || ns == "" || strings.ContainsAny(ns, "-*,# \\/") || strings.ToLower(ns) != ns {
		errs = append(errs, fmt.Errorf("data-stream %q: must be logs-%s-<namespace>, namespace lower case without '-'", c.DataStream, Dataset))
	}
	if c.BatchSize < 1 || c.BatchSize > 50_000 {
		errs = append(errs, fmt.Errorf("batch-size %d: must be 1-50000", c.BatchSize))
	}
	if c.BatchWait <= 0 {
		errs = append(errs, fmt.Errorf("batch-wait %s: must be > 0", c.BatchWait))
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		errs = append(errs, fmt.Errorf("session-timeout %s: must be 6s-5m", c.SessionTimeout))
	}
	if c.MaxBackoff < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("max-backoff %s: must be >= 10ms", c.MaxBackoff))
	}
	return errors.Join(errs...)
}
