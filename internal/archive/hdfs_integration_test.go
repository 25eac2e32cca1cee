//go:build integration

package archive

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// TestHDFSRoundTrip runs every FS operation against the stack's NameNode
// through the deadline-bound connection.
func TestHDFSRoundTrip(t *testing.T) {
	root := "/hourglass-test/" + stacktest.UniqueName("archive-it")
	h, err := NewHDFS(HDFSConfig{NameNodes: []string{stacktest.Get(t, "HOURGLASS_HDFS_NAMENODE")}, Root: root,
		RPCTimeout: 10 * time.Second, IOTimeout: 10 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		for _, n := range []string{"tenant=a/dt=2026-01-02/hour=03/b", "tenant=a/dt=2026-01-02/hour=03/a",
			"tenant=a/dt=2026-01-02/hour=03", "tenant=a/dt=2026-01-02", "tenant=a", "."} {
			_ = h.Remove(cctx, n)
		}
		require.NoError(t, h.Close())
	})

	fi, err := h.Stat(ctx, ".")
	require.NoError(t, err, "the root is created by its first stat")
	require.True(t, fi.Dir)
	dir := "tenant=a/dt=2026-01-02/hour=03"
	data := []byte("line one\nline two\n")
	require.NoError(t, WriteFile(ctx, h, dir+"/a", data))
	fi, err = h.Stat(ctx, dir+"/a")
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), fi.Size)
	require.NoError(t, h.Rename(ctx, dir+"/a", dir+"/b"))
	_, err = h.Stat(ctx, dir+"/a")
	require.True(t, IsNotExist(err), "renamed away: %v", err)
	entries, err := h.ReadDir(ctx, dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "b", entries[0].Name)
	r, err := h.Open(ctx, dir+"/b")
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.Equal(t, data, got)
	require.NoError(t, h.Remove(ctx, dir+"/b"))
	_, err = h.Open(ctx, dir+"/b")
	require.True(t, IsNotExist(err), "removed: %v", err)
}
