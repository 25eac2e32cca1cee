package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/colinmarc/hdfs/v2"
)

// HDFSConfig says how to reach the archive on HDFS.
type HDFSConfig struct {
	NameNodes []string // host:port of the NameNode RPC endpoint(s)
	User      string   // HDFS user (default "hourglass")
	Root      string   // absolute path of the archive root, e.g. /hourglass/archive
	// IOTimeout bounds dialing and each read or write on a DataNode
	// connection (default 20s), so a hung DataNode fails the operation
	// instead of blocking it forever.
	IOTimeout time.Duration
	// RPCTimeout bounds each NameNode call (default 20s): dialing, each
	// read and write on the NameNode connection, and the whole call as its
	// caller waits for it. A NameNode that accepts connections but never
	// answers fails the call with an error wrapping os.ErrDeadlineExceeded.
	RPCTimeout time.Duration
}

// HDFS is an archive on HDFS, through colinmarc/hdfs (the native RPC and
// data-transfer protocols, no JVM).
//
// The library's calls take no context, so every method runs its NameNode
// calls in a goroutine and returns when ctx ends or RPCTimeout passes,
// whichever comes first; the abandoned call ends by itself within
// RPCTimeout (the connection's read and write deadlines), and what it opened
// late is closed (a created file is removed). A connection that timed out
// is closed, so the client dials again (after its 5s backoff) rather than
// read a stale answer.
type HDFS struct {
	cfg     HDFSConfig
	name    string
	opts    hdfs.ClientOptions
	timeout error // the cause of a call that outlived RPCTimeout

	mu sync.Mutex   // guards c; held while connecting
	c  *hdfs.Client // nil until the first call connects

	connMu sync.Mutex
	conn   net.Conn // the latest NameNode connection

	life   sync.Mutex // guards closed and calls.Add
	closed bool
	calls  sync.WaitGroup
}

var _ FS = (*HDFS)(nil)

// errClosed is the error of a call on a closed HDFS.
var errClosed = errors.New("archive: hdfs: closed")

// NewHDFS checks the configuration and returns without I/O: the NameNode is
// dialed by the first call, so an unreachable NameNode shows in the first
// operation (and Ready checks), not here. The client reconnects by itself
// after the NameNode comes back.
func NewHDFS(cfg HDFSConfig) (*HDFS, error) {
	if len(cfg.NameNodes) == 0 || cfg.NameNodes[0] == "" {
		return nil, errors.New("archive: hdfs: no NameNode address")
	}
	if cfg.User == "" {
		cfg.User = "hourglass"
	}
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if !path.IsAbs(cfg.Root) {
		return nil, fmt.Errorf("archive: hdfs root %q must be absolute", cfg.Root)
	}
	cfg.Root = path.Clean(cfg.Root)
	if cfg.IOTimeout <= 0 {
		cfg.IOTimeout = 20 * time.Second
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = 20 * time.Second
	}
	h := &HDFS{cfg: cfg, name: "hdfs://" + cfg.NameNodes[0] + cfg.Root,
		timeout: fmt.Errorf("no answer from the NameNode within %s: %w", cfg.RPCTimeout, os.ErrDeadlineExceeded)}
	datanode := &net.Dialer{Timeout: min(cfg.IOTimeout, 10*time.Second), KeepAlive: 30 * time.Second}
	h.opts = hdfs.ClientOptions{
		Addresses:        cfg.NameNodes,
		User:             cfg.User,
		NamenodeDialFunc: h.dialNameNode,
		DatanodeDialFunc: datanode.DialContext,
	}
	return h, nil
}

// dialNameNode dials with RPCTimeout and gives the connection read and
// write deadlines of RPCTimeout per operation.
func (h *HDFS) dialNameNode(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: h.cfg.RPCTimeout, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{Conn: c, timeout: h.cfg.RPCTimeout}
	h.connMu.Lock()
	h.conn = dc
	h.connMu.Unlock()
	return dc, nil
}

// deadlineConn sets a deadline before each read and write, and closes
// itself when one passed: the RPC stream is then out of step (an answer may
// still come for the abandoned call), so it must not be used again.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.closeOnTimeout(err)
	return n, err
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	c.closeOnTimeout(err)
	return n, err
}

func (c *deadlineConn) closeOnTimeout(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		_ = c.Conn.Close()
	}
}

// client returns the client, connecting it on first use.
func (h *HDFS) client() (*hdfs.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		return h.c, nil
	}
	h.life.Lock()
	closed := h.closed
	h.life.Unlock()
	if closed {
		return nil, errClosed
	}
	c, err := hdfs.NewClient(h.opts)
	if err != nil {
		return nil, fmt.Errorf("connect to NameNode %v: %w", h.cfg.NameNodes, err)
	}
	h.c = c
	return c, nil
}

// call runs fn (NameNode calls) and returns its result, or an error when ctx
// ends or RPCTimeout passes first. An abandoned fn runs on, bounded by the
// connection's deadlines; if it then succeeds, discard releases its result.
func call[T any](ctx context.Context, h *HDFS, fn func(*hdfs.Client) (T, error), discard func(*hdfs.Client, T)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	h.life.Lock()
	if h.closed {
		h.life.Unlock()
		return zero, errClosed
	}
	h.calls.Add(1)
	h.life.Unlock()
	ctx, cancel := context.WithTimeoutCause(ctx, h.cfg.RPCTimeout, h.timeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	var taken atomic.Bool // the first to set it decides: delivered, or abandoned
	go func() {
		defer h.calls.Done()
		var r result
		c, err := h.client()
		if err == nil {
			r.v, r.err = fn(c)
		} else {
			r.err = err
		}
		if taken.CompareAndSwap(false, true) {
			done <- r
			return
		}
		if r.err == nil && discard != nil {
			discard(c, r.v)
		}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		if taken.CompareAndSwap(false, true) {
			return zero, context.Cause(ctx)
		}
		r := <-done
		return r.v, r.err
	}
}

func (h *HDFS) String() string { return h.name }

// Close closes the NameNode connection and waits for the calls still
// running (they fail at once: their connection is closed).
func (h *HDFS) Close() error {
	h.life.Lock()
	if h.closed {
		h.life.Unlock()
		return nil
	}
	h.closed = true
	h.life.Unlock()
	h.connMu.Lock()
	if h.conn != nil {
		_ = h.conn.Close()
	}
	h.connMu.Unlock()
	h.mu.Lock()
	c := h.c
	h.mu.Unlock()
	var err error
	if c != nil {
		err = c.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	h.calls.Wait()
	return err
}

func (h *HDFS) path(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	return path.Join(h.cfg.Root, name), nil
}

// hdfsWriter retries Close while the NameNode has not yet heard of the last
// block from the DataNode (hdfs.ErrReplicating), as the Java client does.
type hdfsWriter struct {
	w       *hdfs.FileWriter
	timeout time.Duration
}

func (w hdfsWriter) Write(p []byte) (int, error) {
	_ = w.w.SetDeadline(time.Now().Add(w.timeout))
	return w.w.Write(p)
}

func (w hdfsWriter) Close() error {
	backoff := 20 * time.Millisecond
	deadline := time.Now().Add(w.timeout)
	for {
		_ = w.w.SetDeadline(time.Now().Add(w.timeout))
		err := w.w.Close()
		if !hdfs.IsErrReplicating(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, time.Second)
	}
}

func (h *HDFS) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	p, err := h.path(name)
	if err != nil {
		return nil, err
	}
	w, err := call(ctx, h, func(c *hdfs.Client) (*hdfs.FileWriter, error) {
		if err := c.MkdirAll(path.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("mkdir: %w", err)
		}
		return c.Create(p)
	}, func(c *hdfs.Client, w *hdfs.FileWriter) {
		_ = w.Close() // created after the caller gave up: nobody will write it
		_ = c.Remove(p)
	})
	if err != nil {
		return nil, fmt.Errorf("archive: hdfs create %s: %w", name, err)
	}
	return hdfsWriter{w: w, timeout: h.cfg.IOTimeout}, nil
}

type hdfsReader struct {
	r       *hdfs.FileReader
	timeout time.Duration
}

func (r hdfsReader) Read(p []byte) (int, error) {
	_ = r.r.SetDeadline(time.Now().Add(r.timeout))
	return r.r.Read(p)
}

func (r hdfsReader) Close() error { return r.r.Close() }

// Seek lets readers of large files start mid-file (the query service's
// result pages).
func (r hdfsReader) Seek(offset int64, whence int) (int64, error) {
	return r.r.Seek(offset, whence)
}

func (h *HDFS) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	p, err := h.path(name)
	if err != nil {
		return nil, err
	}
	r, err := call(ctx, h, func(c *hdfs.Client) (*hdfs.FileReader, error) { return c.Open(p) },
		func(_ *hdfs.Client, r *hdfs.FileReader) { _ = r.Close() })
	if err != nil {
		return nil, fmt.Errorf("archive: hdfs open %s: %w", name, err)
	}
	return hdfsReader{r: r, timeout: h.cfg.IOTimeout}, nil
}

func (h *HDFS) ReadDir(ctx context.Context, dir string) ([]FileInfo, error) {
	p, err := h.path(dir)
	if err != nil {
		return nil, err
	}
	entries, err := call(ctx, h, func(c *hdfs.Client) ([]os.FileInfo, error) { return c.ReadDir(p) }, nil)
	if err != nil {
		return nil, fmt.Errorf("archive: hdfs list %s: %w", dir, err)
	}
	out := make([]FileInfo, len(entries))
	for i, e := range entries {
		out[i] = info(e)
	}
	return out, nil
}

func info(e os.FileInfo) FileInfo {
	return FileInfo{Name: e.Name(), Size: e.Size(), Dir: e.IsDir(), ModTime: e.ModTime()}
}

func (h *HDFS) Stat(ctx context.Context, name string) (FileInfo, error) {
	p, err := h.path(name)
	if err != nil {
		return FileInfo{}, err
	}
	e, err := call(ctx, h, func(c *hdfs.Client) (os.FileInfo, error) {
		e, err := c.Stat(p)
		if name == "." && errors.Is(err, os.ErrNotExist) {
			// A new archive: its root appears with the first file, but
			// readiness checks stat it first. Create it, as NewLocal does
			// for a local root (NewHDFS cannot: it does not talk to the
			// NameNode).
			if err = c.MkdirAll(p, 0o755); err == nil {
				e, err = c.Stat(p)
			}
		}
		return e, err
	}, nil)
	if err != nil {
		return FileInfo{}, fmt.Errorf("archive: hdfs stat %s: %w", name, err)
	}
	return info(e), nil
}

func (h *HDFS) Rename(ctx context.Context, from, to string) error {
	pf, err := h.path(from)
	if err != nil {
		return err
	}
	pt, err := h.path(to)
	if err != nil {
		return err
	}
	// Abandoned, the rename may still happen: callers check (the archiver
	// stats both names after a failed rename).
	if _, err := call(ctx, h, func(c *hdfs.Client) (struct{}, error) { return struct{}{}, c.Rename(pf, pt) }, nil); err != nil {
		return fmt.Errorf("archive: hdfs rename %s: %w", from, err)
	}
	return nil
}

func (h *HDFS) Remove(ctx context.Context, name string) error {
	p, err := h.path(name)
	if err != nil {
		return err
	}
	if _, err := call(ctx, h, func(c *hdfs.Client) (struct{}, error) { return struct{}{}, c.Remove(p) }, nil); err != nil {
		return fmt.Errorf("archive: hdfs remove %s: %w", name, err)
	}
	return nil
}
