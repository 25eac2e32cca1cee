package jobs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestResetCheckpoint(t *testing.T) {
	now := time.Date(2026, 12, 4, 3, 4, 5, 0, time.UTC)
	root := t.TempDir()
	ck := filepath.Join(root, "request_rate")
	for _, part := range []string{"windows/offsets", "windows/commits", "late/offsets"} {
		require.NoError(t, os.MkdirAll(filepath.Join(ck, part), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(ck, "windows", "offsets", "0"), []byte("v1\n{}\n{}"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ck, "late-state.json"), []byte("{}"), 0o644))
	store, dir, err := OpenCheckpointStore(root)
	require.NoError(t, err)
	require.Equal(t, root, dir)

	_, err = ResetCheckpoint(store, root, "request_rate", true, now)
	require.ErrorIs(t, err, ErrRunning)
	require.DirExists(t, ck, "a running driver's checkpoint is left alone")

	res, err := ResetCheckpoint(store, root, "request_rate", false, now)
	require.NoError(t, err)
	want := ck + ".reset-20261204T030405Z"
	require.Equal(t, ResetResult{Metric: "request_rate", From: ck, To: want}, res)
	require.NoDirExists(t, ck)
	require.FileExists(t, filepath.Join(want, "windows", "offsets", "0"), "moved aside, not deleted")
	require.FileExists(t, filepath.Join(want, "late-state.json"))

	// A lost checkpoint: nothing to move, not an error.
	res, err = ResetCheckpoint(store, root, "request_rate", false, now)
	require.NoError(t, err)
	require.Empty(t, res.To)

	// The same second again: never overwrite an earlier copy.
	require.NoError(t, os.MkdirAll(ck, 0o755))
	_, err = ResetCheckpoint(store, root, "request_rate", false, now)
	require.ErrorIs(t, err, os.ErrExist)
	require.DirExists(t, ck)

	for _, bad := range []string{"", "..", "a/b", `a\b`} {
		_, err = ResetCheckpoint(store, root, bad, false, now)
		require.ErrorContains(t, err, "bad metric name", bad)
	}
}

func TestOpenCheckpointStoreRejectsBadHDFSRoot(t *testing.T) {
	for _, root := range []string{"hdfs://", "hdfs:///no-host", "hdfs://h:1"} {
		_, _, err := OpenCheckpointStore(root)
		require.ErrorContains(t, err, "want hdfs://host:port/path", root)
	}
}
