// Package jobstest runs the metric jobs' real Spark driver (spark-submit of
// metrics-jobs/run_job.py under a jobs.Supervisor) against the local stack,
// for integration tests of any package: the jobs' own, and the alert drills
// that stop a driver.
package jobstest

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/jobs"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// Config is a supervisor configuration for the local stack, sized for tests:
// local[2], a 1 GiB driver, a 2 s trigger, 2 shuffle partitions, no UI, a 1 s
// restart backoff. Checkpoints go to the stack's HDFS under
// /tmp/hourglass-test-<id> (as in production, removed when the test ends);
// driver state to a temporary directory.
func Config(t testing.TB) jobs.Config {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("jobstest: %v", err)
	}
	hdfsRoot := stacktest.Get(t, "HOURGLASS_HDFS_URL") + "/tmp/hourglass-test-" + stacktest.UniqueName("j")[2:]
	t.Cleanup(func() { deleteHDFS(t, hdfsRoot) })

	cfg := jobs.DefaultConfig()
	cfg.SparkSubmit = filepath.Join(stacktest.Get(t, "SPARK_HOME"), "bin", "spark-submit")
	cfg.Master = "local[2]"
	cfg.Jars = strings.Split(stacktest.Get(t, "HOURGLASS_SPARK_KAFKA_JARS"), ",")
	cfg.DriverMemory = "1g"
	cfg.JobScript = filepath.Join(root, "metrics-jobs", "run_job.py")
	cfg.Brokers, cfg.ESURL = stacktest.Brokers(t), stacktest.Get(t, "HOURGLASS_ES_URL")
	cfg.CheckpointRoot = hdfsRoot
	cfg.StateDir = t.TempDir()
	cfg.Trigger = 2 * time.Second
	cfg.ShufflePartitions = 2
	cfg.UI = false
	cfg.Python = stacktest.Get(t, "HOURGLASS_PYTHON")
	cfg.BackoffMin = time.Second
	cfg.StopGrace = 20 * time.Second
	cfg.Conf = []string{"spark.sql.streaming.minBatchesToRetain=20"}
	return cfg
}

// Driver is a supervisor running one job's driver until Stop or the end of
// the test.
type Driver struct {
	t      testing.TB
	cfg    jobs.Config
	job    string
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Start supervises a driver running specs under the name job.
func Start(t testing.TB, cfg jobs.Config, job string, specs []catalog.JobSpec, log *slog.Logger) *Driver {
	t.Helper()
	sup, err := jobs.NewSupervisor(cfg, log)
	if err != nil {
		t.Fatalf("jobstest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Driver{t: t, cfg: cfg, job: job, cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- sup.Run(ctx, job, specs) }()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("driver log of %s (tail):\n%s", job, d.LogTail(8000))
		}
	})
	return d
}

// Stop stops the driver (SIGTERM, SIGKILL after the config's StopGrace) and
// waits for it to exit. Later calls do nothing.
func (d *Driver) Stop() {
	d.once.Do(func() {
		d.cancel()
		if err := <-d.done; err != nil {
			d.t.Errorf("jobstest: supervisor of %s: %v", d.job, err)
		}
	})
}

// State reads the driver's state file (zero before the first start).
func (d *Driver) State() jobs.State {
	st, _ := jobs.ReadState(d.cfg, d.job)
	return st
}

// LogTail returns the last n bytes of the driver's log.
func (d *Driver) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(d.cfg.StateDir, d.job, "driver.log"))
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// repoRoot is the module's directory (run_job.py lives there).
func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// deleteHDFS removes a directory tree of the stack's HDFS through WebHDFS.
func deleteHDFS(t testing.TB, uri string) {
	web := stacktest.Get(t, "HOURGLASS_WEBHDFS_URL")
	path := uri[strings.Index(uri[len("hdfs://"):], "/")+len("hdfs://"):]
	req, _ := http.NewRequest(http.MethodDelete, web+path+"?op=DELETE&recursive=true&user.name=root", nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
}
