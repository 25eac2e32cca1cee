package jobs

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is how jobs are submitted and supervised.
type Config struct {
	SparkSubmit    string   // the spark-submit program
	Master         string   // local[*], yarn, k8s://..., spark://...
	DeployMode     string   // client (default) or cluster
	Jars           []string // the Kafka connector jars (spark.jars)
	DriverMemory   string
	Conf           []string // extra k=v Spark settings
	JobScript      string   // metrics-jobs/run_job.py
	Brokers        string
	ESURL          string
	CheckpointRoot string // hdfs://... or a local path
	StateDir       string
	Trigger        time.Duration // micro-batch interval
	// MaxOffsetsPerTrigger caps a micro-batch (0: no cap), so that a backlog is
	// worked through in several batches.
	MaxOffsetsPerTrigger int
	ShufflePartitions    int
	UI                   bool   // Spark UI on (the status shows its URL)
	Python               string // PYSPARK_PYTHON; empty: inherit
	BackoffMin           time.Duration
	BackoffMax           time.Duration
	StopGrace            time.Duration // SIGTERM to SIGKILL
}

// DefaultConfig returns the single-machine defaults.
func DefaultConfig() Config {
	return Config{
		SparkSubmit: "spark-submit", Master: "local[*]", DriverMemory: "1g",
		JobScript: "metrics-jobs/run_job.py", Brokers: "127.0.0.1:9092", ESURL: "http://127.0.0.1:9200",
		StateDir: "run/jobs", Trigger: 5 * time.Second, ShufflePartitions: 4, UI: true,
		BackoffMin: 2 * time.Second, BackoffMax: 2 * time.Minute, StopGrace: 30 * time.Second,
	}
}

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.SparkSubmit == "" || c.Master == "" || c.JobScript == "" {
		errs = append(errs, errors.New("spark-submit, master and job-script are required"))
	}
	if c.Brokers == "" || c.ESURL == "" {
		errs = append(errs, errors.New("brokers and es-url are required"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("state-dir is required"))
	}
	if c.DeployMode != "" && c.DeployMode != "client" && c.DeployMode != "cluster" {
		errs = append(errs, fmt.Errorf("deploy-mode %q: want client or cluster", c.DeployMode))
	}
	for _, kv := range c.Conf {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("conf %q: want key=value", kv))
		}
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff %s..%s: want 0 < min <= max", c.BackoffMin, c.BackoffMax))
	}
	if c.Trigger < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("trigger %s: at least 100ms", c.Trigger))
	}
	if c.ShufflePartitions < 1 {
		errs = append(errs, fmt.Errorf("shuffle-partitions %d: must be >= 1", c.ShufflePartitions))
	}
	return errors.Join(errs...)
}

func (c Config) metricDir(metric string) string { return filepath.Join(c.StateDir, metric) }

func (c Config) checkpointRoot() string {
	if c.CheckpointRoot != "" {
		return c.CheckpointRoot
	}
	abs, err := filepath.Abs(filepath.Join(c.StateDir, "checkpoints"))
	if err != nil {
		return filepath.Join(c.StateDir, "checkpoints")
	}
	return abs
}

// SubmitArgs is the spark-submit command line of a streaming job over the
// given spec files, reporting progress into statusDir.
func (c Config) SubmitArgs(specs []string, statusDir string) []string {
	name := "hourglass-metrics"
	for _, s := range specs {
		name += "-" + strings.TrimSuffix(filepath.Base(s), ".json")
	}
	args := append(c.sparkArgs(name), c.JobScript, "stream")
	for _, s := range specs {
		args = append(args, "--spec", s)
	}
	args = append(args, "--brokers", c.Brokers, "--es-url", c.ESURL,
		"--checkpoint-root", c.checkpointRoot(), "--trigger", fmt.Sprintf("%d milliseconds", c.Trigger.Milliseconds()))
	if c.MaxOffsetsPerTrigger > 0 {
		args = append(args, "--max-offsets-per-trigger", strconv.Itoa(c.MaxOffsetsPerTrigger))
	}
	if statusDir != "" {
		args = append(args, "--status-dir", statusDir)
	}
	return args
}

// BatchArgs is the spark-submit command line of a batch run of one metric for
// the event-time hour starting at hour; extra are further driver flags
// (--kafka-from, --kafka-to, --allow-open).
func (c Config) BatchArgs(spec string, hour time.Time, extra ...string) []string {
	name := "hourglass-batch-" + strings.TrimSuffix(filepath.Base(spec), ".json")
	args := append(c.sparkArgs(name), c.JobScript, "batch", "--spec", spec,
		"--hour", hour.UTC().Format(time.RFC3339), "--brokers", c.Brokers, "--es-url", c.ESURL)
	return append(args, extra...)
}

func (c Config) sparkArgs(name string) []string {
	args := []string{"--master", c.Master}
	if c.DeployMode != "" {
		args = append(args, "--deploy-mode", c.DeployMode)
	}
	args = append(args, "--name", name)
	if c.DriverMemory != "" {
		args = append(args, "--driver-memory", c.DriverMemory)
	}
	if len(c.Jars) > 0 {
		args = append(args, "--jars", strings.Join(c.Jars, ","))
	}
	conf := []string{
		fmt.Sprintf("spark.sql.shuffle.partitions=%d", c.ShufflePartitions),
		fmt.Sprintf("spark.ui.enabled=%t", c.UI),
		"spark.sql.session.timeZone=UTC",
	}
	if c.UI {
		// The driver's metrics in Prometheus's format at <UI URL>/metrics/prometheus/
		// (JVM, DAG scheduler, block manager; names metrics_spark_hourglass_driver_*).
		conf = append(conf, "spark.metrics.namespace=spark_hourglass",
			"spark.metrics.conf.*.sink.prometheusServlet.class=org.apache.spark.metrics.sink.PrometheusServlet",
			"spark.metrics.conf.*.sink.prometheusServlet.path=/metrics/prometheus",
			"spark.metrics.conf.driver.source.jvm.class=org.apache.spark.metrics.source.JvmSource")
	}
	if strings.HasPrefix(c.Master, "local") {
		conf = append(conf, "spark.driver.host=127.0.0.1", "spark.driver.bindAddress=127.0.0.1")
	}
	for _, kv := range append(conf, c.Conf...) {
		args = append(args, "--conf", kv)
	}
	return args
}
