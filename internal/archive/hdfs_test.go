package archive

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// silentNameNode accepts TCP connections, reads what it is sent and never
// answers: the NameNode that hangs.
func silentNameNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// TestHDFSNameNodeSilent: every call against a NameNode that never answers
// fails with a timeout within RPCTimeout, whatever the caller's context.
func TestHDFSNameNodeSilent(t *testing.T) {
	const rpcTimeout = 300 * time.Millisecond
	ops := map[string]func(ctx context.Context, h *HDFS) error{
		"stat": func(ctx context.Context, h *HDFS) error { _, err := h.Stat(ctx, "x"); return err },
		"open": func(ctx context.Context, h *HDFS) error { _, err := h.Open(ctx, "x"); return err },
		"readdir": func(ctx context.Context, h *HDFS) error {
			_, err := h.ReadDir(ctx, "tenant=a")
			return err
		},
		"create": func(ctx context.Context, h *HDFS) error { _, err := h.Create(ctx, "a/b"); return err },
		"rename": func(ctx context.Context, h *HDFS) error { return h.Rename(ctx, "a", "b") },
		"remove": func(ctx context.Context, h *HDFS) error { return h.Remove(ctx, "a") },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			h, err := NewHDFS(HDFSConfig{NameNodes: []string{silentNameNode(t)}, Root: "/archive", RPCTimeout: rpcTimeout})
			require.NoError(t, err)
			began := time.Now()
			err = op(context.Background(), h) // no deadline of its own
			took := time.Since(began)
			require.Error(t, err)
			require.True(t, isTimeout(err), "a timeout error, got %v", err)
			require.GreaterOrEqual(t, took, rpcTimeout-50*time.Millisecond, "it did wait for the NameNode")
			require.Less(t, took, 10*rpcTimeout, "bounded by RPCTimeout, no hang")

			// The next call does not hang on the out-of-step connection.
			began = time.Now()
			require.Error(t, op(context.Background(), h))
			require.Less(t, time.Since(began), 10*rpcTimeout)
			require.NoError(t, h.Close())
			require.ErrorIs(t, op(context.Background(), h), errClosed)
		})
	}
}

// TestHDFSContextEnds: the caller's context bounds a call far below
// RPCTimeout, and Close ends the abandoned call at once.
func TestHDFSContextEnds(t *testing.T) {
	h, err := NewHDFS(HDFSConfig{NameNodes: []string{silentNameNode(t)}, Root: "/archive", RPCTimeout: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = h.Stat(ctx, "x")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(began), 10*time.Second)

	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	_, err = h.Open(cctx, "x")
	require.ErrorIs(t, err, context.Canceled, "a cancelled context: no call at all")

	began = time.Now()
	require.NoError(t, h.Close())
	require.Less(t, time.Since(began), 10*time.Second, "Close does not wait out RPCTimeout")
}

// TestHDFSLazyConnect: NewHDFS does no I/O; an unreachable NameNode is an
// error of the first call, not a hang and not a constructor failure.
func TestHDFSLazyConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now

	h, err := NewHDFS(HDFSConfig{NameNodes: []string{addr}, Root: "/archive", RPCTimeout: 2 * time.Second})
	require.NoError(t, err)
	_, err = h.Stat(context.Background(), ".")
	require.Error(t, err)
	require.Contains(t, err.Error(), "connect to NameNode")
	require.NoError(t, h.Close())
	require.NoError(t, h.Close(), "Close twice is fine")
}
