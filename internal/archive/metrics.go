package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Instrument wraps fsys so that every operation is counted by result and
// timed: hourglass_archive_fs_operations_total{component,op,result} and
// hourglass_archive_fs_operation_seconds{component,op}. Reads and writes of
// open files are counted in bytes.
func Instrument(fsys FS, reg prometheus.Registerer, component string) FS {
	labels := prometheus.Labels{"component": component}
	m := &instrumented{
		FS: fsys,
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_archive_fs_operations_total", ConstLabels: labels,
			Help: "Archive file-system operations, by operation and result (ok, error)."}, []string{"op", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hourglass_archive_fs_operation_seconds", ConstLabels: labels,
			Help:    "Latency of archive file-system operations (Create and Open: until the file is open; Close: until durable).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"op"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hourglass_archive_fs_bytes_total", ConstLabels: labels,
			Help: "Bytes written to and read from archive files, by direction (write, read)."}, []string{"direction"}),
	}
	reg.MustRegister(m.ops, m.latency, m.bytes)
	return m
}

type instrumented struct {
	FS
	ops     *prometheus.CounterVec
	latency *prometheus.HistogramVec
	bytes   *prometheus.CounterVec
}

func (m *instrumented) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil && !IsNotExist(err) {
		result = "error"
	}
	m.ops.WithLabelValues(op, result).Inc()
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (m *instrumented) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	start := time.Now()
	w, err := m.FS.Create(ctx, name)
	m.observe("create", start, err)
	if err != nil {
		return nil, err
	}
	return &countingWriter{w: w, m: m, n: m.bytes.WithLabelValues("write")}, nil
}

func (m *instrumented) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	start := time.Now()
	r, err := m.FS.Open(ctx, name)
	m.observe("open", start, err)
	if err != nil {
		return nil, err
	}
	return &countingReader{r: r, n: m.bytes.WithLabelValues("read")}, nil
}

func (m *instrumented) ReadDir(ctx context.Context, dir string) ([]FileInfo, error) {
	start := time.Now()
	out, err := m.FS.ReadDir(ctx, dir)
	m.observe("readdir", start, err)
	return out, err
}

func (m *instrumented) Stat(ctx context.Context, name string) (FileInfo, error) {
	start := time.Now()
	out, err := m.FS.Stat(ctx, name)
	m.observe("stat", start, err)
	return out, err
}

func (m *instrumented) Rename(ctx context.Context, from, to string) error {
	start := time.Now()
	err := m.FS.Rename(ctx, from, to)
	m.observe("rename", start, err)
	return err
}

func (m *instrumented) Remove(ctx context.Context, name string) error {
	start := time.Now()
	err := m.FS.Remove(ctx, name)
	m.observe("remove", start, err)
	return err
}

type countingWriter struct {
	w io.WriteCloser
	m *instrumented
	n prometheus.Counter
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(float64(n))
	return n, err
}

func (c *countingWriter) Close() error {
	start := time.Now()
	err := c.w.Close()
	c.m.observe("close", start, err)
	return err
}

type countingReader struct {
	r io.ReadCloser
	n prometheus.Counter
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(float64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

// Seek seeks the underlying reader, if it can (errors.ErrUnsupported if not).
func (c *countingReader) Seek(offset int64, whence int) (int64, error) {
	if s, ok := c.r.(io.Seeker); ok {
		return s.Seek(offset, whence)
	}
	return 0, fmt.Errorf("archive: seek: %w", errors.ErrUnsupported)
}
