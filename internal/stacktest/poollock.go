package stacktest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// SharePool holds the Spark Connect pool shared for the rest of the test:
// tests of several packages use the pool at once, and a test that kills or
// drains a server (ExclusivePool) waits until none of them is in a test.
// Released at the test's cleanup.
func SharePool(tb testing.TB) { lockPool(tb, syscall.LOCK_SH) }

// ExclusivePool holds the pool alone for the rest of the test: for tests
// that kill, drain or restart its servers, so sessions of other packages'
// tests are not lost under them. Never call it in a test that holds the
// pool shared.
func ExclusivePool(tb testing.TB) { lockPool(tb, syscall.LOCK_EX) }

func lockPool(tb testing.TB, how int) {
	tb.Helper()
	// The lock file sits beside the env file: one per stack.
	path := filepath.Join(filepath.Dir(EnvFile()), "spark-connect-pool.test-lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		tb.Fatalf("stacktest: pool lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		tb.Fatalf("stacktest: pool lock: %v", err)
	}
	tb.Cleanup(func() { f.Close() }) // closing the file releases the lock
}
