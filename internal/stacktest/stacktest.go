// Package stacktest finds the local stack started by `make stack-up` (stack/stack.sh)
// and gives integration tests uniquely named, self-cleaning resources on it.
//
// Integration tests carry the build tag `integration`; `make test` runs them after
// starting the stack. The stack's endpoints come from the env file the stack
// scripts write ($HOURGLASS_STACK_ENV, default ~/.cache/hourglass/stack.env).
// A test that needs the stack fails — it does not skip — when the env file is
// missing, so a broken stack cannot pass as a green run.
package stacktest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Env is the content of the stack's env file: KEY=VALUE lines.
type Env map[string]string

var (
	loadOnce sync.Once
	loaded   Env
	loadErr  error
)

// EnvFile is the path of the env file written by `stack/stack.sh up`.
func EnvFile() string {
	if p := os.Getenv("HOURGLASS_STACK_ENV"); p != "" {
		return p
	}
	home := os.Getenv("HOURGLASS_HOME")
	if home == "" {
		dir, err := os.UserHomeDir()
		if err != nil {
			dir = os.TempDir()
		}
		home = filepath.Join(dir, ".cache", "hourglass")
	}
	return filepath.Join(home, "stack.env")
}

// Load reads the env file once per process.
func Load() (Env, error) {
	loadOnce.Do(func() { loaded, loadErr = readEnvFile(EnvFile()) })
	return loaded, loadErr
}

func readEnvFile(path string) (Env, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("stacktest: open stack env file (run `make stack-up` first): %w", err)
	}
	defer f.Close()
	env := Env{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("stacktest: %s: malformed line %q", path, line)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("stacktest: read %s: %w", path, err)
	}
	return env, nil
}

// Get returns the value of key from the stack env file, failing the test when
// the file or the key is missing. A test that asks for an HDFS address holds
// HDFS shared (ShareHDFS) until its end: a drill that stops the DataNode
// waits for it.
func Get(tb testing.TB, key string) string {
	tb.Helper()
	if strings.Contains(key, "HDFS") {
		ShareHDFS(tb)
	}
	env, err := Load()
	if err != nil {
		tb.Fatal(err)
	}
	v, ok := env[key]
	if !ok || v == "" {
		tb.Fatalf("stacktest: %s has no %s (is the stack up to date? run `make stack-up`)", EnvFile(), key)
	}
	return v
}

// UniqueName returns prefix plus a random suffix, safe as a Kafka topic, an
// index name or a path element: lower case, digits and dashes.
func UniqueName(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return strings.ToLower(prefix) + "-" + hex.EncodeToString(b[:])
}
