package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Start launches a detached supervisor process (argv, normally `hourglass jobs
// supervise ... <metric>`) for job unless one is running; it returns its pid
// and whether it was already running.
func Start(cfg Config, job string, argv []string) (pid int, already bool, err error) {
	dir := cfg.metricDir(job)
	if pid, ok := supervisorPID(dir); ok {
		return pid, true, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, false, fmt.Errorf("jobs: create %s: %w", dir, err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "supervisor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, false, fmt.Errorf("jobs: open supervisor log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this command
	if err := cmd.Start(); err != nil {
		return 0, false, fmt.Errorf("jobs: start supervisor of %s: %w", job, err)
	}
	pid = cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(dir, "supervisor.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = cmd.Process.Kill()
		return 0, false, fmt.Errorf("jobs: write pid file: %w", err)
	}
	_ = cmd.Process.Release()
	return pid, false, nil
}

// Stop signals job's supervisor to stop its driver and waits until it has exited.
func Stop(cfg Config, job string, timeout time.Duration) error {
	dir := cfg.metricDir(job)
	pid, ok := supervisorPID(dir)
	if !ok {
		return fmt.Errorf("jobs: %s: %w", job, errNotRunning)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("jobs: signal supervisor %d of %s: %w", pid, job, err)
	}
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("jobs: supervisor %d of %s still running after %s", pid, job, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = os.Remove(filepath.Join(dir, "supervisor.pid"))
	return nil
}

// IsNotRunning reports whether err says the job was not running.
func IsNotRunning(err error) bool { return errors.Is(err, errNotRunning) }

func supervisorPID(dir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "supervisor.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !alive(pid) {
		return 0, false
	}
	return pid, true
}

func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie (exited, not yet reaped) is not alive.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// Status is what `hourglass jobs status` shows for one job.
type Status struct {
	Job           string
	Supervisor    int // pid, 0 when not running
	State         State
	UIURL         string
	LastProgress  *QueryProgress // the most recent of the job's queries
	Queries       map[string]QueryProgress
	ProgressAge   time.Duration
	Watermark     string // the lowest event-time watermark of the job's aggregation queries
	ProgressFound bool
}

// QueryProgress is one query's last progress, as the driver writes it.
type QueryProgress struct {
	Metric                 string           `json:"metric"`
	BatchID                int64            `json:"batch_id"`
	Timestamp              string           `json:"timestamp"`
	InputRows              int64            `json:"input_rows"`
	ProcessedRowsPerSecond float64          `json:"processed_rows_per_second"`
	Watermark              string           `json:"watermark"`
	MaxEventTime           string           `json:"max_event_time"`
	EndOffsets             map[string]int64 `json:"end_offsets"`
	Committed              map[string]int64 `json:"committed"`
}

// Progress is the driver's progress.json.
type Progress struct {
	PID       int                      `json:"pid"`
	UIURL     string                   `json:"ui_url"`
	AppID     string                   `json:"application_id"`
	UpdatedAt string                   `json:"updated_at"`
	Queries   map[string]QueryProgress `json:"queries"`
}

// ReadProgress reads a job's progress.json.
func ReadProgress(cfg Config, job string) (Progress, error) {
	var p Progress
	b, err := os.ReadFile(filepath.Join(cfg.metricDir(job), "progress.json"))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("jobs: decode progress of %s: %w", job, err)
	}
	return p, nil
}

// ReadState reads the state.json the supervisor of job writes.
func ReadState(cfg Config, job string) (State, error) {
	var st State
	b, err := os.ReadFile(filepath.Join(cfg.metricDir(job), "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("jobs: decode state of %s: %w", job, err)
	}
	return st, nil
}

// GetStatus reads a job's state from disk.
func GetStatus(cfg Config, job string) Status {
	dir := cfg.metricDir(job)
	st := Status{Job: job}
	st.Supervisor, _ = supervisorPID(dir)
	st.State, _ = ReadState(cfg, job)
	if st.Supervisor == 0 && st.State.State != "" && st.State.State != StateStopped {
		st.State.State = "dead" // the supervisor is gone without writing "stopped"
	}
	if p, err := ReadProgress(cfg, job); err == nil {
		st.ProgressFound = true
		st.UIURL = p.UIURL
		st.Queries = p.Queries
		names := make([]string, 0, len(p.Queries))
		for n := range p.Queries {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			q := p.Queries[n]
			if q.Watermark != "" && (st.Watermark == "" || q.Watermark < st.Watermark) {
				st.Watermark = q.Watermark
			}
			if st.LastProgress == nil || q.Timestamp > st.LastProgress.Timestamp {
				st.LastProgress = &q
			}
		}
		if st.LastProgress != nil {
			if t, err := time.Parse(time.RFC3339Nano, st.LastProgress.Timestamp); err == nil {
				st.ProgressAge = time.Since(t)
			}
		}
	}
	return st
}

// Jobs lists the jobs that have a state directory.
func Jobs(cfg Config) []string {
	entries, _ := os.ReadDir(cfg.StateDir)
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "checkpoints" {
			out = append(out, e.Name())
		}
	}
	return out
}
