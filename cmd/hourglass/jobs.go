package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/jobs"
	"github.com/hourglass-io/hourglass/internal/telemetry"
)

const jobsHelp = `Supervises the PySpark metric jobs (metrics-jobs/run_job.py), one spark-submit
per metric, on any master (local[*] by default; yarn, k8s://..., spark://...).

  start [metric...]     start a detached supervisor per metric (all when none named)
  stop [metric...]      stop the supervisors and their Spark drivers
  restart [metric...]   stop, then start
  status [metric...]    state, restarts, last progress and Spark UI URL per job
  supervise metric...   supervise in the foreground (what start runs; for containers)
  reset-checkpoint metric...
                        stop the metric's driver if running, move its checkpoint
                        aside (<root>/<metric>.reset-<time>) and start it again: it
                        resumes from the consumer group's committed offsets
                        (docs/runbook-checkpoint.md)
  batch --hour H metric...
                        batch mode: recompute one closed event-time hour from Kafka,
                        writing the same documents; each run is recorded in the
                        index hourglass-jobruns

With --driver NAME the selected metrics run together in one Spark driver (what
the single-machine demo does on 2 cores). A failed driver is restarted with
exponential backoff. State, logs and the
drivers' progress are under --state-dir/<metric>/; checkpoints under
--checkpoint-root (hdfs://... in production).`

func runJobs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := jobs.DefaultConfig()
	home := os.Getenv("HOURGLASS_HOME")
	if home != "" {
		cfg.StateDir = filepath.Join(home, "run", "jobs")
	}
	if sh := os.Getenv("SPARK_HOME"); sh != "" {
		cfg.SparkSubmit = filepath.Join(sh, "bin", "spark-submit")
	}
	fs := flag.NewFlagSet("jobs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	catalogPath := fs.String("catalog", defaultCatalog, "metric catalog file")
	fs.StringVar(&cfg.SparkSubmit, "spark-submit", cfg.SparkSubmit, "spark-submit program (default $SPARK_HOME/bin/spark-submit)")
	fs.StringVar(&cfg.Master, "master", cfg.Master, "Spark master URL: local[*], yarn, k8s://https://..., spark://host:7077")
	fs.StringVar(&cfg.DeployMode, "deploy-mode", cfg.DeployMode, "spark-submit deploy mode: client or cluster (empty: spark-submit's default)")
	jars := fs.String("jars", os.Getenv("HOURGLASS_SPARK_KAFKA_JARS"), "Kafka connector jars, comma-separated (default $HOURGLASS_SPARK_KAFKA_JARS)")
	fs.StringVar(&cfg.DriverMemory, "driver-memory", cfg.DriverMemory, "Spark driver memory")
	conf := fs.String("conf", "", "extra Spark settings, key=value, comma-separated")
	fs.StringVar(&cfg.JobScript, "job-script", cfg.JobScript, "the driver's entry point")
	fs.StringVar(&cfg.Brokers, "brokers", cfg.Brokers, "Kafka bootstrap brokers")
	fs.StringVar(&cfg.ESURL, "es-url", cfg.ESURL, "Elasticsearch/OpenSearch URL")
	fs.StringVar(&cfg.CheckpointRoot, "checkpoint-root", cfg.CheckpointRoot, "checkpoint root, hdfs://... or a path (default <state-dir>/checkpoints)")
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "supervisor state, logs and progress (default $HOURGLASS_HOME/run/jobs)")
	fs.DurationVar(&cfg.Trigger, "trigger", cfg.Trigger, "micro-batch interval")
	fs.IntVar(&cfg.ShufflePartitions, "shuffle-partitions", cfg.ShufflePartitions, "spark.sql.shuffle.partitions")
	fs.BoolVar(&cfg.UI, "ui", cfg.UI, "Spark UI on (its URL is shown by status)")
	fs.StringVar(&cfg.Python, "python", os.Getenv("HOURGLASS_PYTHON"), "Python of the driver (PYSPARK_PYTHON; default $HOURGLASS_PYTHON)")
	fs.DurationVar(&cfg.BackoffMin, "backoff-min", cfg.BackoffMin, "first restart delay")
	fs.DurationVar(&cfg.BackoffMax, "backoff-max", cfg.BackoffMax, "longest restart delay")
	fs.DurationVar(&cfg.StopGrace, "stop-grace", cfg.StopGrace, "how long a driver may take to stop before SIGKILL")
	fs.IntVar(&cfg.MaxOffsetsPerTrigger, "max-offsets-per-trigger", 0, "cap of a micro-batch in records (0: none)")
	hour := fs.String("hour", "", "batch: start of the closed event-time hour, RFC 3339")
	kafkaFrom := fs.String("kafka-from", "", "batch: read Kafka records from this Kafka timestamp (default hour - lateness - 10m)")
	kafkaTo := fs.String("kafka-to", "", "batch: up to this Kafka timestamp (default hour + 1h + lateness)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	driver := fs.String("driver", "", "run the selected metrics together in one Spark driver of this name (single-machine mode; default: one driver per metric)")
	listenAddr := fs.String("listen-addr", "", "supervise: admin address serving /metrics (each driver's up-ness and restarts), /healthz, /readyz; empty: none. One supervisor process only (supervise, or start with --driver)")
	fs.Usage = flagenv.Usage(fs, "hourglass jobs [flags] start|stop|restart|status|supervise|batch [metric...]", jobsHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	cfg.Jars = splitList(*jars)
	cfg.Conf = splitList(*conf)
	rest := fs.Args()
	flags := args[:len(args)-len(rest)] // as parsed: what the detached supervisors get again
	if len(rest) == 0 {
		fs.Usage()
		return errUsage
	}
	c, err := catalog.Load(*catalogPath)
	if err != nil {
		return err
	}
	metrics, err := selectMetrics(c, rest[1:])
	if err != nil {
		return err
	}
	units := jobUnits(metrics, *driver)
	if *listenAddr != "" && len(units) > 1 && (rest[0] == "start" || rest[0] == "restart") {
		return fmt.Errorf("--listen-addr with %d supervisor processes would bind it %d times: use --driver (one driver) or `supervise` (one process)", len(units), len(units))
	}
	switch rest[0] {
	case "supervise":
		return superviseJobs(ctx, cfg, units, *level, *listenAddr, stderr)
	case "start":
		return startJobs(cfg, units, flags, stdout)
	case "stop":
		return stopJobs(cfg, units, stdout)
	case "restart":
		if err := stopJobs(cfg, units, stdout); err != nil {
			return err
		}
		return startJobs(cfg, units, flags, stdout)
	case "status":
		return jobsStatus(cfg, units, stdout)
	case "batch":
		return batchJobs(ctx, cfg, metrics, *hour, *kafkaFrom, *kafkaTo, stdout, stderr)
	case "reset-checkpoint":
		if len(rest) < 2 {
			return fmt.Errorf("jobs: reset-checkpoint: name the metrics (docs/runbook-checkpoint.md): %w", errUsage)
		}
		return resetCheckpoints(cfg, units, flags, stdout)
	}
	fs.Usage()
	return errUsage
}

func selectMetrics(c *catalog.Catalog, names []string) ([]catalog.Metric, error) {
	if len(names) == 0 {
		return c.Metrics, nil
	}
	var out []catalog.Metric
	for _, n := range names {
		m, ok := c.Metric(n)
		if !ok {
			return nil, fmt.Errorf("jobs: no metric %q in the catalog", n)
		}
		out = append(out, m)
	}
	return out, nil
}

// jobUnit is one supervised Spark driver and the metrics it runs.
type jobUnit struct {
	name    string
	metrics []catalog.Metric
}

// jobUnits is one driver per metric, or one driver for all of them when
// driver names it.
func jobUnits(metrics []catalog.Metric, driver string) []jobUnit {
	if driver != "" {
		return []jobUnit{{driver, metrics}}
	}
	out := make([]jobUnit, len(metrics))
	for i, m := range metrics {
		out[i] = jobUnit{m.Name, []catalog.Metric{m}}
	}
	return out
}

func (u jobUnit) metricNames() []string {
	out := make([]string, len(u.metrics))
	for i, m := range u.metrics {
		out[i] = m.Name
	}
	return out
}

// superviseJobs runs one supervisor per driver in this process until ctx is done.
func superviseJobs(ctx context.Context, cfg jobs.Config, units []jobUnit, level, listenAddr string, stderr io.Writer) error {
	log, err := telemetry.NewLogger(stderr, level)
	if err != nil {
		return err
	}
	var fns []func(context.Context) error
	var regs []prometheus.Registerer // none: no admin server, no metrics
	if listenAddr != "" {
		reg := telemetry.NewRegistry()
		admin := telemetry.NewAdmin(listenAddr, reg)
		if err := admin.Listen(); err != nil {
			return err
		}
		regs = append(regs, reg)
		fns = append(fns, admin.Serve)
	}
	sup, err := jobs.NewSupervisor(cfg, log, regs...)
	if err != nil {
		return err
	}
	for _, u := range units {
		specs := make([]catalog.JobSpec, len(u.metrics))
		for j, m := range u.metrics {
			specs[j] = catalog.SparkSpec(m)
		}
		fns = append(fns, func(ctx context.Context) error { return sup.Run(ctx, u.name, specs) })
	}
	return runGroup(ctx, fns...)
}

// startJobs launches `hourglass jobs <flags> supervise <metrics>` detached,
// per driver: flags are the command line's flags, as the flag set parsed them.
func startJobs(cfg jobs.Config, units []jobUnit, flags []string, stdout io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("jobs: find own executable: %w", err)
	}
	var errs []error
	for _, u := range units {
		argv := append(append(append([]string{self, "jobs"}, flags...), "supervise"), u.metricNames()...)
		pid, already, err := jobs.Start(cfg, u.name, argv)
		switch {
		case err != nil:
			errs = append(errs, err)
		case already:
			fmt.Fprintf(stdout, "%s: already running (supervisor %d)\n", u.name, pid)
		default:
			fmt.Fprintf(stdout, "%s: started (supervisor %d, logs in %s)\n", u.name, pid, filepath.Join(cfg.StateDir, u.name))
		}
	}
	return errors.Join(errs...)
}

func stopJobs(cfg jobs.Config, units []jobUnit, stdout io.Writer) error {
	var errs []error
	for _, u := range units {
		err := jobs.Stop(cfg, u.name, cfg.StopGrace+30*time.Second)
		switch {
		case jobs.IsNotRunning(err):
			fmt.Fprintf(stdout, "%s: not running\n", u.name)
		case err != nil:
			errs = append(errs, err)
		default:
			fmt.Fprintf(stdout, "%s: stopped\n", u.name)
		}
	}
	return errors.Join(errs...)
}

func jobsStatus(cfg jobs.Config, units []jobUnit, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DRIVER\tSTATE\tRESTARTS\tLAST PROGRESS\tBATCH\tROWS/S\tWATERMARK\tSPARK UI\tLAST EXIT")
	for _, u := range units {
		st := jobs.GetStatus(cfg, u.name)
		state := st.State.State
		if state == "" {
			state = "never started"
		}
		last, batch, rate := "-", "-", "-"
		wm := "-"
		if p := st.LastProgress; p != nil {
			last = fmt.Sprintf("%s (%s ago)", p.Timestamp, st.ProgressAge.Round(time.Second))
			batch = fmt.Sprint(p.BatchID)
			rate = fmt.Sprintf("%.0f", p.ProcessedRowsPerSecond)
			wm = st.Watermark
		}
		ui := st.UIURL
		if ui == "" {
			ui = "-"
		}
		exit := strings.TrimSpace(st.State.LastExit)
		if exit == "" {
			exit = "-"
		}
		name := u.name
		if len(u.metrics) > 1 || u.metrics[0].Name != u.name {
			name += " (" + strings.Join(u.metricNames(), ",") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", name, state, st.State.Restarts, last, batch, rate, wm, ui, exit)
	}
	return tw.Flush()
}

// batchJobs runs the batch mode of each metric for one hour, in the foreground.
func batchJobs(ctx context.Context, cfg jobs.Config, metrics []catalog.Metric, hour, from, to string, stdout, stderr io.Writer) error {
	h, err := time.Parse(time.RFC3339, hour)
	if err != nil {
		return fmt.Errorf("jobs batch: --hour %q: want RFC 3339: %w", hour, err)
	}
	var extra []string
	if from != "" {
		extra = append(extra, "--kafka-from", from)
	}
	if to != "" {
		extra = append(extra, "--kafka-to", to)
	}
	var errs []error
	for _, m := range metrics {
		if err := jobs.RunBatch(ctx, cfg, catalog.SparkSpec(m), h, stdout, extra...); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stdout, "%s %s: ok\n", m.Name, h.UTC().Format(time.RFC3339))
	}
	return errors.Join(errs...)
}

// resetCheckpoints stops the drivers running the metrics, moves each metric's
// checkpoint aside and starts again the drivers that were running.
func resetCheckpoints(cfg jobs.Config, units []jobUnit, flags []string, stdout io.Writer) error {
	var running []jobUnit
	for _, u := range units {
		if jobs.Running(cfg, u.name) {
			running = append(running, u)
		}
	}
	if err := stopJobs(cfg, running, stdout); err != nil {
		return err
	}
	store, root, err := jobs.OpenCheckpointStore(cfg.CheckpointRootPath())
	if err != nil {
		return err
	}
	defer store.Close()
	var errs []error
	for _, u := range units {
		for _, m := range u.metricNames() {
			res, err := jobs.ResetCheckpoint(store, root, m, jobs.Running(cfg, u.name), time.Now())
			switch {
			case err != nil:
				errs = append(errs, err)
			case res.To == "":
				fmt.Fprintf(stdout, "%s: no checkpoint at %s; the driver starts from the consumer group's offsets\n", m, res.From)
			default:
				fmt.Fprintf(stdout, "%s: checkpoint moved to %s; the driver starts from the consumer group's offsets\n", m, res.To)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return startJobs(cfg, running, flags, stdout)
}
