package archive

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Local is an archive in a local directory.
type Local struct {
	root string
}

var _ FS = (*Local)(nil)

// NewLocal returns the archive rooted at dir, creating dir if needed.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, fmt.Errorf("archive: local root: empty path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("archive: local root %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("archive: create root: %w", err)
	}
	return &Local{root: abs}, nil
}

func (l *Local) path(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(name)), nil
}

func (l *Local) String() string { return "file://" + l.root }

// Close does nothing.
func (l *Local) Close() error { return nil }

type localFile struct{ f *os.File }

func (w localFile) Write(p []byte) (int, error) { return w.f.Write(p) }

// Close syncs the file to disk, then closes it.
func (w localFile) Close() error {
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (l *Local) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("archive: create %s: %w", name, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("archive: create %s: %w", name, err)
	}
	return localFile{f}, nil
}

func (l *Local) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := l.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("archive: open %s: %w", name, err)
	}
	return f, nil
}

func (l *Local) ReadDir(ctx context.Context, dir string) ([]FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := l.path(dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("archive: list %s: %w", dir, err)
	}
	out := make([]FileInfo, 0, len(entries))
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, FileInfo{Name: e.Name(), Size: info.Size(), Dir: e.IsDir(), ModTime: info.ModTime()})
	}
	return out, nil
}

func (l *Local) Stat(ctx context.Context, name string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	p, err := l.path(name)
	if err != nil {
		return FileInfo{}, err
	}
	info, err := os.Stat(p)
	if err != nil {
		return FileInfo{}, fmt.Errorf("archive: stat %s: %w", name, err)
	}
	return FileInfo{Name: info.Name(), Size: info.Size(), Dir: info.IsDir(), ModTime: info.ModTime()}, nil
}

// Rename renames from to to and syncs the directory, so the new name is durable.
func (l *Local) Rename(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pf, err := l.path(from)
	if err != nil {
		return err
	}
	pt, err := l.path(to)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(pt), 0o755); err != nil {
		return fmt.Errorf("archive: rename %s: %w", from, err)
	}
	if err := os.Rename(pf, pt); err != nil {
		return fmt.Errorf("archive: rename %s: %w", from, err)
	}
	if d, err := os.Open(filepath.Dir(pt)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("archive: rename %s: sync directory: %w", from, err)
		}
	}
	return nil
}

func (l *Local) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("archive: remove %s: %w", name, err)
	}
	return nil
}
