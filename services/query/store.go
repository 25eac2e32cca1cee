package query

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/hourglass-io/hourglass/internal/archive"
)

// Store keeps job records and results durably, in the archive's file system
// under a hidden prefix (readers of the archive skip names starting with
// "_"):
//
//	_query/jobs/<id>.json         the job record, replaced whole on each change
//	_query/results/<id>.ndjson    the rows of a succeeded job, one JSON object a line
//
// Why there and not a compacted Kafka topic: results must live in the
// archive's file system anyway (large ones are written there, and they
// expire there), the records are small and few, a replace is one rename,
// and a restart reads one directory; a topic would need reading from the
// start at every boot and a second system to keep results.
type Store struct {
	fs     archive.FS
	prefix string
}

// NewStore keeps records under prefix (default "_query") of fsys.
func NewStore(fsys archive.FS, prefix string) *Store {
	if prefix == "" {
		prefix = "_query"
	}
	return &Store{fs: fsys, prefix: prefix}
}

var idRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// newID returns an unguessable job id (128 random bits, hex).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Store) jobPath(id string) string    { return s.prefix + "/jobs/" + id + ".json" }
func (s *Store) resultPath(id string) string { return s.prefix + "/results/" + id + ".ndjson" }

// Put writes the job record (a temp file renamed over the old one).
func (s *Store) Put(ctx context.Context, j *Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("query: encode job %s: %w", j.ID, err)
	}
	return s.replace(ctx, s.jobPath(j.ID), data)
}

func (s *Store) replace(ctx context.Context, name string, data []byte) error {
	dir, base := name[:strings.LastIndexByte(name, '/')], name[strings.LastIndexByte(name, '/')+1:]
	tmp := dir + "/_tmp." + base + "." + newID()[:8]
	if err := archive.WriteFile(ctx, s.fs, tmp, data); err != nil {
		return fmt.Errorf("query: store %s: %w", name, err)
	}
	if err := s.fs.Rename(ctx, tmp, name); err != nil {
		_ = s.fs.Remove(context.WithoutCancel(ctx), tmp)
		return fmt.Errorf("query: store %s: %w", name, err)
	}
	return nil
}

// Load reads every job record. Unreadable records are reported, not fatal.
func (s *Store) Load(ctx context.Context) (jobs []*Job, bad []error, err error) {
	entries, err := s.fs.ReadDir(ctx, s.prefix+"/jobs")
	if archive.IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("query: list jobs: %w", err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name, ".json")
		if e.Dir || !ok || !idRE.MatchString(id) {
			if strings.HasPrefix(e.Name, "_tmp.") { // a write that did not finish
				_ = s.fs.Remove(ctx, s.prefix+"/jobs/"+e.Name)
			}
			continue
		}
		data, err := s.read(ctx, s.jobPath(id))
		if err != nil {
			return nil, nil, err
		}
		var j Job
		if err := json.Unmarshal(data, &j); err != nil || j.ID != id {
			bad = append(bad, fmt.Errorf("query: job record %s: unreadable: %v", id, err))
			continue
		}
		jobs = append(jobs, &j)
	}
	return jobs, bad, nil
}

func (s *Store) read(ctx context.Context, name string) ([]byte, error) {
	rc, err := s.fs.Open(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("query: open %s: %w", name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("query: read %s: %w", name, err)
	}
	return data, nil
}

// Delete removes a job's record and results.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.DeleteResult(ctx, id); err != nil {
		return err
	}
	if err := s.fs.Remove(ctx, s.jobPath(id)); err != nil && !archive.IsNotExist(err) {
		return fmt.Errorf("query: delete job %s: %w", id, err)
	}
	return nil
}

// PutResult writes a job's rows as NDJSON. No rows, no file (HDFS cannot
// complete an empty file reliably): readers go by the job's row count.
func (s *Store) PutResult(ctx context.Context, id string, rows []map[string]any) error {
	if len(rows) == 0 {
		return nil
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("query: encode result %s: %w", id, err)
		}
	}
	return s.replace(ctx, s.resultPath(id), []byte(b.String()))
}

// OpenResult opens a job's NDJSON rows; rows is the job's row count.
func (s *Store) OpenResult(ctx context.Context, id string, rows int) (io.ReadCloser, error) {
	if rows == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return s.fs.Open(ctx, s.resultPath(id))
}

// DeleteResult removes a job's rows (none is not an error).
func (s *Store) DeleteResult(ctx context.Context, id string) error {
	if err := s.fs.Remove(ctx, s.resultPath(id)); err != nil && !archive.IsNotExist(err) {
		return fmt.Errorf("query: delete result %s: %w", id, err)
	}
	return nil
}

// Ready checks the file system answers.
func (s *Store) Ready(ctx context.Context) error {
	if _, err := s.fs.Stat(ctx, "."); err != nil {
		return fmt.Errorf("archive %s: %w", s.fs, err)
	}
	return nil
}
