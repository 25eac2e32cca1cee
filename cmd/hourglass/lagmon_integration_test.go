//go:build integration

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// The lagmon command runs against the local Kafka and serves its endpoints.
func TestLagmonServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var errOut bytes.Buffer
	go func() {
		done <- runLagmon(ctx, []string{"--brokers", stacktest.Brokers(t), "--catalog", "../../metrics-jobs/catalog.yaml",
			"--poll-interval", "200ms", "--window", "1s", "--listen-addr", addr}, io.Discard, &errOut)
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done, errOut.String())
	}()
	get := func(path string) (int, []byte) {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	var snap struct {
		Poll   int `json:"poll"`
		Groups []struct {
			Group string `json:"group"`
		} `json:"groups"`
	}
	require.Eventually(t, func() bool {
		code, b := get("/v1/status")
		return code == http.StatusOK && json.Unmarshal(b, &snap) == nil && snap.Poll > 0
	}, 20*time.Second, 50*time.Millisecond, errOut.String())
	names := map[string]bool{}
	for _, g := range snap.Groups {
		names[g.Group] = true
	}
	require.True(t, names["hourglass-router"] && names["hourglass-metrics-latency"], "catalog groups watched: %v", names)
	code, b := get("/status")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), "<svg")
	code, b = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), "hourglass_sla_status")
	code, _ = get("/readyz")
	require.Equal(t, http.StatusOK, code)
}
