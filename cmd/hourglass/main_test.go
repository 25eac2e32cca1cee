package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/metriceval"
)

func runArgs(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, out, _ := runArgs("--help")
	require.Equal(t, 0, code)
	for _, c := range commands() {
		require.Contains(t, out, "  "+c.name+" ")
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runArgs("version")
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "hourglass "+version+"\n"), out)
	require.Contains(t, out, "go1.")
}

func TestUsageErrors(t *testing.T) {
	code, _, errOut := runArgs()
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "Usage:")

	code, _, errOut = runArgs("nope")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unknown command "nope"`)

	code, _, _ = runArgs("version", "extra")
	require.Equal(t, 2, code)

	code, _, errOut = runArgs("version", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "Usage: hourglass version")
}

func TestCatalogCommand(t *testing.T) {
	const cat = "../../metrics-jobs/catalog.yaml"
	code, out, errOut := runArgs("catalog", "--catalog", cat, "validate")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "6 metrics OK")

	code, out, _ = runArgs("catalog", "--catalog", cat, "render", "spark", "latency")
	require.Equal(t, 0, code)
	require.Contains(t, out, `"consumer_group": "hourglass-metrics-latency"`)

	dir := t.TempDir()
	code, _, errOut = runArgs("catalog", "--catalog", cat, "--out", dir, "render", "spark")
	require.Equal(t, 0, code, errOut)
	for _, m := range []string{"avg_rtt", "request_rate", "error_rate", "latency", "bandwidth", "unique_clients"} {
		require.FileExists(t, dir+"/"+m+".json")
	}

	code, out, _ = runArgs("catalog", "--catalog", cat, "render", "topics")
	require.Equal(t, 0, code)
	require.Contains(t, out, "hourglass.metric.unique_clients")

	bad := t.TempDir() + "/bad.yaml"
	require.NoError(t, os.WriteFile(bad, []byte("metrics:\n  - name: x\n    descripton: typo\n"), 0o644))
	code, _, errOut = runArgs("catalog", "--catalog", bad, "validate")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, `metric "x": line 3: key "descripton": unknown key`)

	code, _, _ = runArgs("catalog", "--catalog", cat, "render", "nothing")
	require.Equal(t, 2, code)
}

func TestGenTruth(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runArgs("gen", "--out", dir+"/recs.ndjson", "--count", "3000", "--tenants", "2",
		"--start", "2026-01-01T00:00:00Z", "--rate", "20", "--truth", dir+"/truth.ndjson", "--catalog", "../../metrics-jobs/catalog.yaml")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"generated":3000`)
	b, err := os.ReadFile(dir + "/truth.ndjson")
	require.NoError(t, err)
	// request_rate counts every record: per window size, the samples add up to 3000.
	samples := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var d metriceval.TruthDoc
		require.NoError(t, json.Unmarshal([]byte(line), &d))
		if d.Metric == "request_rate" {
			samples[d.Window.Size] += d.Samples
			require.Equal(t, float64(d.Samples), d.Values["requests"])
		}
	}
	require.Equal(t, map[string]int64{"1m": 3000, "1h": 3000}, samples)
}

// TestAllRestartsAFailedService: in `hourglass all`, a service that fails
// after its start is restarted and the others keep running; a service that
// fails at once stops the group with its error.
func TestAllRestartsAFailedService(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := restartPolicy{StartupGrace: 20 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	var runs atomic.Int32
	flaky := restarting("flaky", log, p, func(ctx context.Context) error {
		if runs.Add(1) <= 3 {
			time.Sleep(30 * time.Millisecond) // ran past its grace, then a transient failure
			return errors.New("broker connection lost")
		}
		<-ctx.Done()
		return nil
	})
	otherStopped := make(chan struct{})
	steady := func(ctx context.Context) error { <-ctx.Done(); close(otherStopped); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGroup(ctx, flaky, steady) }()
	require.Eventually(t, func() bool { return runs.Load() == 4 }, 5*time.Second, time.Millisecond)
	select {
	case <-otherStopped:
		t.Fatal("a restarted service stopped the others")
	default:
	}
	cancel()
	require.NoError(t, <-done)

	broken := restarting("broken", log, p, func(context.Context) error { return errors.New("bad flag") })
	err := runGroup(context.Background(), broken, steady2())
	require.ErrorContains(t, err, "broken: failed at start: bad flag")
}

func steady2() func(context.Context) error {
	return func(ctx context.Context) error { <-ctx.Done(); return nil }
}

// The group stops its members in reverse start order, each once the one
// started after it has returned: sources drain into sinks that still run.
func TestRunGroupStopsInReverseOrder(t *testing.T) {
	var mu sync.Mutex
	var events []string
	member := func(name string, drain time.Duration) func(context.Context) error {
		return func(ctx context.Context) error {
			<-ctx.Done()
			mu.Lock()
			events = append(events, name+" stopping")
			mu.Unlock()
			time.Sleep(drain) // draining takes a while: the next must wait
			mu.Lock()
			events = append(events, name+" stopped")
			mu.Unlock()
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runGroup(ctx, member("sink", 0), member("router", 20*time.Millisecond), member("source", 20*time.Millisecond))
	}()
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, []string{"source stopping", "source stopped", "router stopping", "router stopped", "sink stopping", "sink stopped"}, events)

	// A member that fails stops the group the same way, and its error is returned.
	events = nil
	failing := func(context.Context) error { return errors.New("boom") }
	err := runGroup(context.Background(), member("sink", 0), failing, member("source", 0))
	require.ErrorContains(t, err, "boom")
	require.Equal(t, []string{"source stopping", "source stopped", "sink stopping", "sink stopped"}, events)
}

// The ingress's flags name addresses as every service does: --listen-addr is
// the admin address, --api-addr the intake; the former --admin-addr fails
// loudly instead of being taken for something else.
func TestIngressAddressFlags(t *testing.T) {
	code, _, errOut := runArgs("ingress", "--admin-addr", "127.0.0.1:0")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--admin-addr was renamed --listen-addr")
	code, _, errOut = runArgs("ingress", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, errOut, "-api-addr")
	require.Contains(t, errOut, "-listen-addr")
}

func TestGenSlowFlag(t *testing.T) {
	got, err := parseSlow("tenant-03=4, tenant-01=0.5")
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"tenant-03": 4, "tenant-01": 0.5}, got)
	_, err = parseSlow("tenant-01=1000")
	require.NoError(t, err, "at the bound")
	for _, bad := range []string{"tenant-01", "tenant-01=0", "tenant-01=1000.5", "tenant-01=x", "Bad Tenant=2",
		"tenant-01=2,tenant-01=3", "tenant-01=NaN", "tenant-01=-1"} {
		_, err := parseSlow(bad)
		require.Error(t, err, bad)
	}
	dir := t.TempDir()
	code, _, errOut := runArgs("gen", "--out", dir+"/r.ndjson", "--count", "10", "--slow", "tenant-01=0")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--slow")
}

func TestGenHistoryUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--days", "0"}, {"--days", "29"}, {"--hours", "25"}, {"--records-per-hour", "100001"}, {"--tenants", "0"},
		{"--metrics", "bandwidth"}, {"--metrics", "nothing"},
	} {
		code, _, errOut := runArgs(append([]string{"gen", "history", "--catalog", "../../metrics-jobs/catalog.yaml",
			"--es-url", "http://127.0.0.1:1"}, args...)...)
		require.Equal(t, 2, code, "%v: %s", args, errOut)
	}
}
