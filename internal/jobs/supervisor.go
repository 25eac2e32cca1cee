package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/catalog"
)

// Job states in state.json.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateBackoff  = "backoff" // the driver exited; restarting after a delay
	StateStopped  = "stopped"
)

// State is what the supervisor writes to state.json.
type State struct {
	Job       string     `json:"job"`
	Metrics   []string   `json:"metrics"`
	State     string     `json:"state"`
	DriverPID int        `json:"driver_pid,omitempty"`
	Restarts  int        `json:"restarts"`
	StartedAt time.Time  `json:"started_at"` // of the current driver
	LastExit  string     `json:"last_exit,omitempty"`
	NextStart *time.Time `json:"next_start,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// Supervisor runs a job's driver with spark-submit and restarts it when it fails.
type Supervisor struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics // nil: not instrumented
}

// NewSupervisor checks cfg and returns a Supervisor. With a registerer in
// reg, it exports each driver's up-ness and restarts (metrics.go).
func NewSupervisor(cfg Config, log *slog.Logger, reg ...prometheus.Registerer) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("jobs: config: %w", err)
	}
	s := &Supervisor{cfg: cfg, log: log.With("component", "jobs")}
	if len(reg) > 0 && reg[0] != nil {
		s.metrics = newMetrics(reg[0])
	}
	return s, nil
}

// Run supervises one driver running specs (normally one metric; tests run
// several in one driver) under the name job, until ctx is done; then it stops
// the driver (SIGTERM, SIGKILL after StopGrace) and returns nil.
func (s *Supervisor) Run(ctx context.Context, job string, specs []catalog.JobSpec) error {
	dir := s.cfg.metricDir(job)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("jobs: create %s: %w", dir, err)
	}
	var paths []string
	st := State{Job: job}
	for _, spec := range specs {
		b, err := catalog.MarshalSpec(spec)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, spec.Metric+".json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("jobs: write spec %s: %w", p, err)
		}
		paths = append(paths, p)
		st.Metrics = append(st.Metrics, spec.Metric)
	}
	backoff := s.cfg.BackoffMin
	defer s.metrics.gone(job)
	for {
		st.State, st.StartedAt, st.NextStart = StateStarting, time.Now().UTC(), nil
		cmd, logf, err := s.start(dir, paths)
		if err != nil {
			st.LastExit = err.Error()
		} else {
			st.State, st.DriverPID = StateRunning, cmd.Process.Pid
			s.writeState(dir, &st)
			s.metrics.started(job)
			s.log.Info("driver started", "job", job, "pid", cmd.Process.Pid, "restarts", st.Restarts)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-ctx.Done():
				stopGroup(cmd.Process.Pid, done, s.cfg.StopGrace)
				logf.Close()
				st.State, st.DriverPID, st.LastExit = StateStopped, 0, "stopped"
				s.writeState(dir, &st)
				s.log.Info("driver stopped", "job", job)
				return nil
			case err := <-done:
				logf.Close()
				st.LastExit = exitText(err)
				if time.Since(st.StartedAt) > 5*s.cfg.BackoffMax {
					backoff = s.cfg.BackoffMin // it ran well for a while: not a crash loop
				}
			}
		}
		// The driver must never stop by itself: restart it after a backoff.
		st.Restarts++
		s.metrics.exited(job)
		next := time.Now().Add(backoff).UTC()
		st.State, st.DriverPID, st.NextStart = StateBackoff, 0, &next
		s.writeState(dir, &st)
		s.log.Warn("driver exited; restarting", "job", job, "exit", st.LastExit, "backoff", backoff, "restarts", st.Restarts)
		select {
		case <-ctx.Done():
			st.State, st.NextStart = StateStopped, nil
			s.writeState(dir, &st)
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.BackoffMax)
	}
}

func (s *Supervisor) start(dir string, specs []string) (*exec.Cmd, *os.File, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "driver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("jobs: open driver log: %w", err)
	}
	_ = os.Remove(filepath.Join(dir, "progress.json")) // progress of the previous driver
	cmd := exec.Command(s.cfg.SparkSubmit, s.cfg.SubmitArgs(specs, dir)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stop spark-submit, the JVM and Python together
	cmd.Env = os.Environ()
	if s.cfg.Python != "" {
		cmd.Env = append(cmd.Env, "PYSPARK_PYTHON="+s.cfg.Python, "PYSPARK_DRIVER_PYTHON="+s.cfg.Python)
	}
	fmt.Fprintf(logf, "\n=== %s hourglass jobs: %s %q\n", time.Now().UTC().Format(time.RFC3339), s.cfg.SparkSubmit, cmd.Args[1:])
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("jobs: start %s: %w", s.cfg.SparkSubmit, err)
	}
	return cmd, logf, nil
}

// stopGroup sends SIGTERM to the process group of pid, then SIGKILL after grace.
func stopGroup(pid int, done <-chan error, grace time.Duration) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // leftovers of the group (the Python driver)
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (s *Supervisor) writeState(dir string, st *State) {
	st.UpdatedAt = time.Now().UTC()
	if err := writeJSON(filepath.Join(dir, "state.json"), st); err != nil {
		s.log.Error("write job state", "error", err)
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

// errNotRunning is returned by Stop for a job without a live supervisor.
var errNotRunning = errors.New("not running")

// RunBatch runs the batch mode of spec for the event-time hour starting at
// hour with spark-submit, in the foreground, its output going to out.
func RunBatch(ctx context.Context, cfg Config, spec catalog.JobSpec, hour time.Time, out io.Writer, extra ...string) error {
	dir := cfg.metricDir(spec.Metric)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("jobs: create %s: %w", dir, err)
	}
	b, err := catalog.MarshalSpec(spec)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, spec.Metric+".json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("jobs: write spec %s: %w", path, err)
	}
	cmd := exec.CommandContext(ctx, cfg.SparkSubmit, cfg.BatchArgs(path, hour, extra...)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = os.Environ()
	if cfg.Python != "" {
		cmd.Env = append(cmd.Env, "PYSPARK_PYTHON="+cfg.Python, "PYSPARK_DRIVER_PYTHON="+cfg.Python)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("jobs: batch %s %s: %w", spec.Metric, hour.UTC().Format(time.RFC3339), err)
	}
	return nil
}
