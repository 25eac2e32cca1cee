package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"strings"
	"time"
)

// FS is the file system under the archive root, as the archiver and logpeek
// use it. Names are slash-separated and relative to the root. Errors for a
// missing name wrap fs.ErrNotExist. Implementations are safe for concurrent use.
type FS interface {
	// Create creates a new file (failing if it exists, parents created as
	// needed). The file is durable, complete and visible under name once
	// Close returned nil; a file whose Write or Close failed must be removed.
	Create(ctx context.Context, name string) (io.WriteCloser, error)
	// Open opens a file for reading.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// ReadDir lists a directory.
	ReadDir(ctx context.Context, dir string) ([]FileInfo, error)
	// Stat describes one name.
	Stat(ctx context.Context, name string) (FileInfo, error)
	// Rename moves a file, replacing an existing one at to.
	Rename(ctx context.Context, from, to string) error
	// Remove deletes a file or an empty directory.
	Remove(ctx context.Context, name string) error
	// Close releases the connection, if any.
	Close() error
	// String names the root, for logs (e.g. hdfs://nn:8020/archive).
	String() string
}

// FileInfo describes one directory entry.
type FileInfo struct {
	Name    string
	Size    int64
	Dir     bool
	ModTime time.Time
}

// Open returns the FS for a root: "hdfs://host:port/path" (several NameNodes
// as host1:port,host2:port) is HDFS, acting as user; anything else, with or
// without "file://", is a local directory.
func Open(root, user string) (FS, error) {
	if strings.HasPrefix(root, "hdfs://") {
		u, err := url.Parse(root)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("archive: root %q: want hdfs://namenode:port/path", root)
		}
		return NewHDFS(HDFSConfig{NameNodes: strings.Split(u.Host, ","), User: user, Root: u.Path})
	}
	return NewLocal(strings.TrimPrefix(root, "file://"))
}

// IsNotExist reports whether err says a name does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// WriteFile writes data to a new file name and closes it; on failure it
// removes what it created.
func WriteFile(ctx context.Context, fsys FS, name string, data []byte) error {
	w, err := fsys.Create(ctx, name)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rerr := fsys.Remove(rctx, name); rerr != nil && !IsNotExist(rerr) {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("archive: write %s: %w", name, err)
	}
	return nil
}

// checkName refuses names that would leave the root.
func checkName(name string) error {
	for _, e := range strings.Split(name, "/") {
		if e == ".." {
			return fmt.Errorf("archive: bad name %q", name)
		}
	}
	return nil
}
