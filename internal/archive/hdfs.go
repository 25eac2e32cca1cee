package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
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
}

// HDFS is an archive on HDFS, through colinmarc/hdfs (the native RPC and
// data-transfer protocols, no JVM).
type HDFS struct {
	c    *hdfs.Client
	cfg  HDFSConfig
	name string
}

var _ FS = (*HDFS)(nil)

// NewHDFS connects to the NameNode lazily: it fails only for a bad
// configuration; an unreachable NameNode shows in the first operation. The
// client reconnects by itself after the NameNode comes back.
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
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	c, err := hdfs.NewClient(hdfs.ClientOptions{
		Addresses:        cfg.NameNodes,
		User:             cfg.User,
		NamenodeDialFunc: dialer.DialContext,
		DatanodeDialFunc: dialer.DialContext,
	})
	if err != nil {
		return nil, fmt.Errorf("archive: hdfs client: %w", err)
	}
	return &HDFS{c: c, cfg: cfg, name: "hdfs://" + cfg.NameNodes[0] + cfg.Root}, nil
}

func (h *HDFS) String() string { return h.name }

// Close closes the NameNode connection.
func (h *HDFS) Close() error { return h.c.Close() }

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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := h.path(name)
	if err != nil {
		return nil, err
	}
	if err := h.c.MkdirAll(path.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("archive: hdfs create %s: mkdir: %w", name, err)
	}
	w, err := h.c.Create(p)
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

func (h *HDFS) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := h.path(name)
	if err != nil {
		return nil, err
	}
	r, err := h.c.Open(p)
	if err != nil {
		return nil, fmt.Errorf("archive: hdfs open %s: %w", name, err)
	}
	return hdfsReader{r: r, timeout: h.cfg.IOTimeout}, nil
}

func (h *HDFS) ReadDir(ctx context.Context, dir string) ([]FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := h.path(dir)
	if err != nil {
		return nil, err
	}
	entries, err := h.c.ReadDir(p)
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
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	p, err := h.path(name)
	if err != nil {
		return FileInfo{}, err
	}
	e, err := h.c.Stat(p)
	if name == "." && errors.Is(err, os.ErrNotExist) {
		// A new archive: its root appears with the first file, but readiness
		// checks stat it first. Create it, as NewLocal does for a local root
		// (NewHDFS cannot: it does not talk to the NameNode).
		if err = h.c.MkdirAll(p, 0o755); err == nil {
			e, err = h.c.Stat(p)
		}
	}
	if err != nil {
		return FileInfo{}, fmt.Errorf("archive: hdfs stat %s: %w", name, err)
	}
	return info(e), nil
}

func (h *HDFS) Rename(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pf, err := h.path(from)
	if err != nil {
		return err
	}
	pt, err := h.path(to)
	if err != nil {
		return err
	}
	if err := h.c.Rename(pf, pt); err != nil {
		return fmt.Errorf("archive: hdfs rename %s: %w", from, err)
	}
	return nil
}

func (h *HDFS) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := h.path(name)
	if err != nil {
		return err
	}
	if err := h.c.Remove(p); err != nil {
		return fmt.Errorf("archive: hdfs remove %s: %w", name, err)
	}
	return nil
}
