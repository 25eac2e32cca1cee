package jobs

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// A driver that keeps exiting is counted per restart with up 0; one that
// runs is up 1; a job no longer supervised has no series.
func TestSupervisorMetrics(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		check        func(t *testing.T, m *metrics)
	}{
		{"crash loop", "exit 3", func(t *testing.T, m *metrics) {
			require.Eventually(t, func() bool { return testutil.ToFloat64(m.restarts.WithLabelValues("j")) >= 3 }, 10*time.Second, 10*time.Millisecond)
			require.Zero(t, testutil.ToFloat64(m.up.WithLabelValues("j")))
		}},
		{"running", "exec sleep 60", func(t *testing.T, m *metrics) {
			require.Eventually(t, func() bool { return testutil.ToFloat64(m.up.WithLabelValues("j")) == 1 }, 10*time.Second, 10*time.Millisecond)
			require.Zero(t, testutil.ToFloat64(m.restarts.WithLabelValues("j")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			submit := filepath.Join(dir, "spark-submit")
			require.NoError(t, os.WriteFile(submit, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o755))
			cfg := DefaultConfig()
			cfg.SparkSubmit, cfg.StateDir = submit, dir
			cfg.BackoffMin, cfg.BackoffMax, cfg.StopGrace = 5*time.Millisecond, 10*time.Millisecond, time.Second
			reg := prometheus.NewRegistry()
			sup, err := NewSupervisor(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- sup.Run(ctx, "j", nil) }()
			tc.check(t, sup.metrics)
			cancel()
			require.NoError(t, <-done)
			n, err := testutil.GatherAndCount(reg, "hourglass_jobs_driver_up", "hourglass_jobs_driver_restarts_total")
			require.NoError(t, err)
			require.Zero(t, n, "series of a job no longer supervised")
		})
	}
}
