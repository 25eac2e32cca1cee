package stacktest

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// Tests of several packages run at once on one stack. A test that kills,
// drains or restarts a shared engine must not do it under another package's
// test, so each such engine has a lock: its users hold it shared, its drills
// exclusive. The locks are files beside the env file (one set per stack),
// locked with flock(2); a test holds a lock until its cleanup.

// SharePool holds the Spark Connect pool shared for the rest of the test.
func SharePool(tb testing.TB) { poolLock.hold(tb, false) }

// ExclusivePool holds the pool alone for the rest of the test: for tests
// that kill, drain or restart its servers, so sessions of other packages'
// tests are not lost under them.
func ExclusivePool(tb testing.TB) { poolLock.hold(tb, true) }

// ShareHDFS holds HDFS shared for the rest of the test. Get takes it for
// every test that asks for an HDFS address, so no test needs to call it.
func ShareHDFS(tb testing.TB) { hdfsLock.hold(tb, false) }

// ExclusiveHDFS holds HDFS alone for the rest of the test: for the drills
// that stop its DataNode. Other packages' tests that use HDFS wait.
func ExclusiveHDFS(tb testing.TB) { hdfsLock.hold(tb, true) }

var (
	poolLock = &stackLock{file: "spark-connect-pool.test-lock"}
	hdfsLock = &stackLock{file: "hdfs.test-lock"}
)

// stackLock is one engine's lock. flock(2) locks belong to an open file, so
// a process holds each lock through one file: its mode is exclusive while
// any of the process's holders wants it so, shared while any holder is
// left, and the file is closed (the lock released) after the last holder.
// A test may thus take a lock shared and exclusive in any order.
type stackLock struct {
	file string

	mu                sync.Mutex
	f                 *os.File
	shared, exclusive int
}

func (l *stackLock) hold(tb testing.TB, exclusive bool) {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		path := filepath.Join(filepath.Dir(EnvFile()), l.file)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			tb.Fatalf("stacktest: lock %s: %v", l.file, err)
		}
		l.f = f
	}
	if exclusive {
		l.exclusive++
	} else {
		l.shared++
	}
	if err := l.apply(); err != nil {
		l.drop(exclusive)
		tb.Fatalf("stacktest: lock %s: %v", l.file, err)
	}
	tb.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.drop(exclusive)
	})
}

// drop removes one holder and sets the lock to what the others need.
// Called with mu held.
func (l *stackLock) drop(exclusive bool) {
	if exclusive {
		l.exclusive--
	} else {
		l.shared--
	}
	_ = l.apply() // a failed downgrade keeps the stronger lock until the close
}

// apply sets the file's lock to what the holders need. Called with mu held.
func (l *stackLock) apply() error {
	switch {
	case l.exclusive > 0:
		return syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX)
	case l.shared > 0:
		return syscall.Flock(int(l.f.Fd()), syscall.LOCK_SH)
	default:
		err := l.f.Close() // releases the lock
		l.f = nil
		return err
	}
}
