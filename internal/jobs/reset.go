package jobs

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/colinmarc/hdfs/v2"
)

// CheckpointStore is where a job's checkpoints live: a local directory or HDFS.
type CheckpointStore interface {
	// Exists reports whether p exists.
	Exists(p string) (bool, error)
	// Rename moves from to to (to must not exist).
	Rename(from, to string) error
	Close() error
}

// ErrRunning is returned when the metric's driver is still running: a
// checkpoint is moved only while nothing writes to it.
var ErrRunning = errors.New("jobs: the driver is running; stop it first")

// ResetResult says what ResetCheckpoint did.
type ResetResult struct {
	Metric string
	From   string // the checkpoint directory
	To     string // where it was moved; empty when there was none
}

// ResetCheckpoint moves the checkpoint of metric (<root>/<metric>: its
// queries' checkpoints and the late-record state) aside to
// <root>/<metric>.reset-<UTC time>, kept for inspection. The next start has
// no checkpoint, so every query starts from the metric's consumer group's
// committed offsets (what the driver has processed by all of its queries),
// or from the earliest offsets for partitions the group never committed.
// running must say whether the metric's driver is running: ResetCheckpoint
// refuses then (ErrRunning). A missing checkpoint is not an error (To is
// empty): the driver already starts from the group.
func ResetCheckpoint(store CheckpointStore, root, metric string, running bool, now time.Time) (ResetResult, error) {
	if metric == "" || strings.ContainsAny(metric, "/\\") || metric == "." || metric == ".." {
		return ResetResult{}, fmt.Errorf("jobs: reset checkpoint: bad metric name %q", metric)
	}
	from := strings.TrimRight(root, "/") + "/" + metric
	res := ResetResult{Metric: metric, From: from}
	if running {
		return res, fmt.Errorf("jobs: reset checkpoint of %s: %w", metric, ErrRunning)
	}
	ok, err := store.Exists(from)
	if err != nil {
		return res, fmt.Errorf("jobs: reset checkpoint: look for %s: %w", from, err)
	}
	if !ok {
		return res, nil
	}
	to := from + ".reset-" + now.UTC().Format("20060102T150405Z")
	if ok, err := store.Exists(to); err != nil || ok {
		if err == nil {
			err = fs.ErrExist
		}
		return res, fmt.Errorf("jobs: reset checkpoint: move aside to %s: %w", to, err)
	}
	if err := store.Rename(from, to); err != nil {
		return res, fmt.Errorf("jobs: reset checkpoint: move %s to %s: %w", from, to, err)
	}
	res.To = to
	return res, nil
}

// OpenCheckpointStore returns the store of a checkpoint root: hdfs://host:port/...
// through the NameNode (as HADOOP_USER_NAME or the current user), anything
// else as a local path.
func OpenCheckpointStore(root string) (CheckpointStore, string, error) {
	if !strings.HasPrefix(root, "hdfs://") {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, "", fmt.Errorf("jobs: checkpoint root %s: %w", root, err)
		}
		return localStore{}, abs, nil
	}
	u, err := url.Parse(root)
	if err != nil || u.Host == "" || !path.IsAbs(u.Path) {
		return nil, "", fmt.Errorf("jobs: checkpoint root %q: want hdfs://host:port/path", root)
	}
	name := os.Getenv("HADOOP_USER_NAME")
	if name == "" {
		if cur, err := user.Current(); err == nil {
			name = cur.Username
		}
	}
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{u.Host}, User: name})
	if err != nil {
		return nil, "", fmt.Errorf("jobs: connect to HDFS %s: %w", u.Host, err)
	}
	return hdfsStore{c}, u.Path, nil
}

type localStore struct{}

func (localStore) Exists(p string) (bool, error) {
	_, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (localStore) Rename(from, to string) error { return os.Rename(from, to) }
func (localStore) Close() error                 { return nil }

type hdfsStore struct{ c *hdfs.Client }

func (s hdfsStore) Exists(p string) (bool, error) {
	_, err := s.c.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (s hdfsStore) Rename(from, to string) error { return s.c.Rename(from, to) }
func (s hdfsStore) Close() error                 { return s.c.Close() }

// Running reports whether job's supervisor is running.
func Running(cfg Config, job string) bool {
	_, ok := supervisorPID(cfg.metricDir(job))
	return ok
}

// CheckpointRootPath is the checkpoint root the drivers use.
func (c Config) CheckpointRootPath() string { return c.checkpointRoot() }
