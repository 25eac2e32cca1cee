// Package filewatch calls a function when a file's content changes or when
// asked to (e.g. on SIGHUP). Services use it to reload configuration files
// (the catalog, API keys, tokens) without a restart.
package filewatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"time"
)

// Watch polls path every interval and calls reload when its content changed
// since the last call, and whenever trigger fires. It returns when ctx is done.
// A file that cannot be read counts as a change once it is readable again, so
// reload sees (and reports) a broken state only when the file is there.
func Watch(ctx context.Context, path string, interval time.Duration, trigger <-chan struct{}, reload func()) {
	last := Hash(path)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-trigger:
		case <-tick.C:
			h := Hash(path)
			if h == nil || bytes.Equal(h, last) {
				continue
			}
		}
		last = Hash(path)
		reload()
	}
}

// Hash is the SHA-256 of the file's content, nil if it cannot be read.
func Hash(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
