package stacktest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  string
)

// Binary builds cmd/hourglass once per test process and returns its path, for
// tests that run a service as a process (to SIGKILL it, for instance).
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			buildErr = "go list -m: " + err.Error()
			return
		}
		root := strings.TrimSpace(string(out))
		dir, err := os.MkdirTemp("", "hourglass-bin-")
		if err != nil {
			buildErr = err.Error()
			return
		}
		builtBin = filepath.Join(dir, "hourglass")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/hourglass")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = "go build ./cmd/hourglass: " + err.Error() + "\n" + string(out)
		}
	})
	if buildErr != "" {
		tb.Fatal("stacktest: " + buildErr)
	}
	return builtBin
}
