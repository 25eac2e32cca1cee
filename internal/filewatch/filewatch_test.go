package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(path, []byte("a"), 0o644))
	var calls atomic.Int32
	trigger := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Watch(ctx, path, 5*time.Millisecond, trigger, func() { calls.Add(1) }); close(done) }()

	time.Sleep(30 * time.Millisecond) // unchanged file: several polls, no call
	require.Zero(t, calls.Load())
	require.NoError(t, os.WriteFile(path, []byte("b"), 0o644))
	require.Eventually(t, func() bool { return calls.Load() == 1 }, time.Second, time.Millisecond)
	trigger <- struct{}{}
	require.Eventually(t, func() bool { return calls.Load() == 2 }, time.Second, time.Millisecond)
	require.NoError(t, os.Remove(path)) // unreadable: no call
	time.Sleep(30 * time.Millisecond)
	require.Equal(t, int32(2), calls.Load())
	cancel()
	<-done
}
