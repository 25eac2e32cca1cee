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

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// The lagmon command runs against the local Kafka and serves its endpoints.
// It creates what it asserts on (a topic and a group with unique names, the
// group committed partway) and needs nothing from earlier runs: on a fresh
// broker the catalog's groups have no topics and no commits yet, and are
// still reported (never dropped from the status).
func TestLagmonServes(t *testing.T) {
	brokers := stacktest.Brokers(t)
	prefix := stacktest.UniqueName("lagmoncmd")
	topic, group := prefix+".t", prefix+"-g"
	stacktest.CreateTopic(t, brokers, topic, 1)
	msgs := make([]kafka.Message, 5)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte("x")}
	}
	stacktest.ProduceToPartition(t, brokers, topic, 0, msgs...)
	client := &kafka.Client{Addr: kafka.TCP(brokers), Timeout: 10 * time.Second}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	require.NoError(t, stacktest.CommitOffsets(cctx, brokers, group, topic, map[int]int64{0: 2}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var errOut bytes.Buffer
	go func() {
		done <- runLagmon(ctx, []string{"--brokers", brokers, "--catalog", "../../metrics-jobs/catalog.yaml",
			"--allow", "^" + prefix, "--poll-interval", "200ms", "--window", "1s", "--listen-addr", addr}, io.Discard, &errOut)
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
	// Decoded strictly as the documented types: numbers or null, never a
	// string in a numeric field.
	type groupJSON struct {
		Group            string   `json:"group"`
		Status           string   `json:"status"`
		Lag              *int64   `json:"lag"`
		LagUnknownReason string   `json:"lag_unknown_reason"`
		TimeLag          *float64 `json:"time_lag_seconds"`
	}
	var snap struct {
		Poll   int         `json:"poll"`
		Groups []groupJSON `json:"groups"`
	}
	var mine groupJSON
	require.Eventually(t, func() bool {
		code, b := get("/v1/status")
		if code != http.StatusOK || json.Unmarshal(b, &snap) != nil {
			return false
		}
		for _, g := range snap.Groups {
			if g.Group == group {
				mine = g
				return g.Lag != nil
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, errOut.String())
	require.Equal(t, int64(3), *mine.Lag, "end 5 − committed 2")
	require.NotNil(t, mine.TimeLag)
	names := map[string]bool{}
	for _, g := range snap.Groups {
		names[g.Group] = true
	}
	require.True(t, names["hourglass-router"] && names["hourglass-metrics-latency"], "catalog groups watched: %v", names)

	code, b := get("/status")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), "<svg")
	require.Contains(t, string(b), group)
	code, b = get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(b), "hourglass_sla_status")
	require.Contains(t, string(b), `hourglass_consumer_lag_records{group="`+group+`",partition="0",topic="`+topic+`"} 3`)
	require.Contains(t, string(b), "hourglass_lagmon_offset_read_errors_total")
	code, _ = get("/readyz")
	require.Equal(t, http.StatusOK, code)
}
