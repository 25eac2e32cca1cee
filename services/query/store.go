package query

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
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

// PutResult writes the rows a job collected as NDJSON. No rows, no file
// (HDFS cannot complete an empty file reliably): readers go by the job's
// row count.
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

// ResultDir is the directory, relative to the archive root, into which
// Spark writes the rows of a large job (JSON lines in part files).
func (s *Store) ResultDir(id string) string { return s.prefix + "/results/" + id }

// resultParts lists the files holding a job's rows, in row order: the one
// NDJSON file of collected rows, or the non-empty part files Spark wrote.
func (s *Store) resultParts(ctx context.Context, j *Job) ([]string, error) {
	if j.Rows == 0 {
		return nil, nil
	}
	if !j.ResultsWritten {
		return []string{s.resultPath(j.ID)}, nil
	}
	entries, err := s.fs.ReadDir(ctx, s.ResultDir(j.ID))
	if err != nil {
		return nil, fmt.Errorf("query: list results of %s: %w", j.ID, err)
	}
	var parts []string
	for _, e := range entries {
		if !e.Dir && e.Size > 0 && strings.HasPrefix(e.Name, "part-") {
			parts = append(parts, s.ResultDir(j.ID)+"/"+e.Name)
		}
	}
	slices.Sort(parts)
	return parts, nil
}

// ResultPos is a position in a job's rows: a part file and a byte in it,
// always at the start of a row.
type ResultPos struct {
	Part int
	Byte int64
}

// ErrBadPosition: a position that is not the start of a row of the job.
var ErrBadPosition = errors.New("not a position in this job's results")

// maxResultLine bounds one row of a result as read back.
const maxResultLine = 16 << 20

// ReadResult calls emit with each row of the job (one JSON object, no
// newline) from pos, at most max rows, and returns the position after the
// last row emitted and whether the rows ended. A page costs its own rows
// (plus one seek), not the rows before it. ErrBadPosition (before any emit)
// for a position that is not the start of a row.
func (s *Store) ReadResult(ctx context.Context, j *Job, pos ResultPos, max int, emit func(row []byte) error) (ResultPos, bool, error) {
	parts, err := s.resultParts(ctx, j)
	if err != nil {
		return pos, false, err
	}
	if pos.Part < 0 || pos.Byte < 0 || pos.Part > len(parts) || (pos.Part == len(parts) && pos.Byte != 0) {
		return pos, false, ErrBadPosition
	}
	n := 0
	for ; pos.Part < len(parts); pos = (ResultPos{Part: pos.Part + 1}) {
		if n == max {
			return pos, false, nil
		}
		next, done, err := s.readPart(ctx, parts[pos.Part], pos.Byte, max-n, func(row []byte) error { n++; return emit(row) })
		if err != nil {
			return pos, false, err
		}
		if !done {
			return ResultPos{Part: pos.Part, Byte: next}, false, nil
		}
	}
	return pos, true, nil
}

// readPart emits at most max rows of one part file from byte off; done
// when the file ended.
func (s *Store) readPart(ctx context.Context, name string, off int64, max int, emit func([]byte) error) (next int64, done bool, err error) {
	rc, err := s.fs.Open(ctx, name)
	if err != nil {
		return off, false, fmt.Errorf("query: open %s: %w", name, err)
	}
	defer rc.Close()
	if off > 0 {
		// The byte before a row's start is the previous row's newline.
		var b [1]byte
		if err := skip(rc, off-1); err != nil {
			return off, false, err
		}
		if _, err := io.ReadFull(rc, b[:]); err != nil || b[0] != '\n' {
			return off, false, ErrBadPosition
		}
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	for n := 0; n < max; {
		line, err := readLine(br)
		off += int64(len(line))
		if row := bytes.TrimSuffix(line, []byte("\n")); len(row) > 0 {
			if err := emit(row); err != nil {
				return off, false, err
			}
			n++
		}
		if err == io.EOF {
			return off, true, nil
		}
		if err != nil {
			return off, false, fmt.Errorf("query: read %s: %w", name, err)
		}
	}
	// max rows read: the file ended if nothing follows.
	if _, err := br.Peek(1); err == io.EOF {
		return off, true, nil
	}
	return off, false, nil
}

// skip moves r n bytes on: a seek where the reader can, a read otherwise.
// A file shorter than n is ErrBadPosition.
func skip(r io.Reader, n int64) error {
	if sk, ok := r.(io.Seeker); ok {
		_, err := sk.Seek(n, io.SeekStart)
		if err == nil || !errors.Is(err, errors.ErrUnsupported) {
			return err
		}
	}
	if _, err := io.CopyN(io.Discard, r, n); err != nil {
		return ErrBadPosition
	}
	return nil
}

// readLine reads one line with its newline (none at the end of the file),
// at most maxResultLine bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxResultLine {
			return nil, fmt.Errorf("a result row over %d bytes", maxResultLine)
		}
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

// DeleteResult removes a job's rows, in either form (none is not an
// error).
func (s *Store) DeleteResult(ctx context.Context, id string) error {
	if err := s.fs.Remove(ctx, s.resultPath(id)); err != nil && !archive.IsNotExist(err) {
		return fmt.Errorf("query: delete result %s: %w", id, err)
	}
	if err := s.removeAll(ctx, s.ResultDir(id)); err != nil {
		return fmt.Errorf("query: delete result %s: %w", id, err)
	}
	return nil
}

// removeAll deletes a directory tree (Spark may leave _temporary/... of a
// write that was interrupted).
func (s *Store) removeAll(ctx context.Context, dir string) error {
	entries, err := s.fs.ReadDir(ctx, dir)
	if archive.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := dir + "/" + e.Name
		if e.Dir {
			if err := s.removeAll(ctx, name); err != nil {
				return err
			}
			continue
		}
		if err := s.fs.Remove(ctx, name); err != nil && !archive.IsNotExist(err) {
			return err
		}
	}
	if err := s.fs.Remove(ctx, dir); err != nil && !archive.IsNotExist(err) {
		return err
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
