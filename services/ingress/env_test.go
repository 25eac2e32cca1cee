//go:build integration || bench

package ingress_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/services/ingress"
)

const tenants = 4

// startIngress runs an ingress with a Kafka sink to brokers/topic until the
// test ends. Tenant tenant-NN has the key "key-tenant-NN".
func startIngress(t *testing.T, brokers, topic, dlq string) *ingress.Service {
	t.Helper()
	keys := "keys:\n"
	for _, tn := range gen.New(gen.Config{Tenants: tenants}).Tenants() {
		d := sha256.Sum256([]byte("key-" + tn))
		keys += "  - {tenant: " + tn + ", sha256: " + hex.EncodeToString(d[:]) + "}\n"
	}
	cfg := ingress.DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.KeysFile = filepath.Join(t.TempDir(), "keys.yaml")
	cfg.SinkTimeout = 5 * time.Second
	cfg.RetryAfter = time.Second
	require.NoError(t, os.WriteFile(cfg.KeysFile, []byte(keys), 0o600))
	sink, err := ingress.NewKafkaSink(ingress.KafkaSinkConfig{Brokers: []string{brokers}, Topic: topic, DLQTopic: dlq, Partitions: 3})
	require.NoError(t, err)
	require.NoError(t, sink.EnsureTopics(context.Background()))
	svc, err := ingress.New(cfg, sink, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, svc.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done); require.NoError(t, sink.Close()) })
	return svc
}

// sendAll posts n generated records (malformed share m) in per-tenant batches
// and returns the request ids of records the ingress accepted and the number
// of 503 answers it saw along the way.
func sendAll(t *testing.T, svc *ingress.Service, seed uint64, n int, m float64, onBatch func(i int)) (map[string]bool, int, int) {
	t.Helper()
	g := gen.New(gen.Config{Seed: seed, Tenants: tenants, Malformed: m, Start: time.Now().UTC()})
	p := &gen.Poster{URL: "http://" + svc.Addr() + "/v1/logs", KeyTemplate: "key-{tenant}", Gzip: true, MaxRetries: 120,
		Client: &http.Client{Timeout: 30 * time.Second}}
	type batch struct {
		tenant string
		lines  [][]byte
		ids    []string
		valid  []bool
	}
	var batches []batch
	cur := map[string]*batch{}
	for range n {
		rec, line, valid := g.NextWithLine()
		b := cur[rec.Tenant]
		if b == nil {
			b = &batch{tenant: rec.Tenant}
			cur[rec.Tenant] = b
		}
		b.lines, b.ids, b.valid = append(b.lines, line), append(b.ids, rec.RequestID), append(b.valid, valid)
		if len(b.lines) == 500 {
			batches = append(batches, *b)
			delete(cur, rec.Tenant)
		}
	}
	for _, b := range cur {
		batches = append(batches, *b)
	}
	accepted := map[string]bool{}
	var mu sync.Mutex
	var retries, rejected int
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				b := batches[i]
				res, err := p.Post(context.Background(), b.tenant, b.lines)
				require.NoError(t, err)
				require.Contains(t, []int{202, 207}, res.Status)
				mu.Lock()
				retries += res.Retries
				rejected += res.Rejected
				for j, id := range b.ids {
					if b.valid[j] {
						accepted[id] = true
					}
				}
				mu.Unlock()
			}
		}()
	}
	for i := range batches {
		if onBatch != nil {
			onBatch(i)
		}
		work <- i
	}
	close(work)
	wg.Wait()
	return accepted, retries, rejected
}

// idsIn reads a topic and counts each record's request id.
func idsIn(t *testing.T, brokers, topic string) map[string]int {
	out := map[string]int{}
	for _, m := range stacktest.ReadAll(t, brokers, topic) {
		rec, _, err := record.Decode(m.Value)
		require.NoError(t, err, "every record in the raw topic is valid")
		require.Equal(t, rec.Tenant, string(m.Key), "keyed by tenant")
		require.Equal(t, string(rec.AppendJSON(nil)), string(m.Value), "the canonical form")
		require.Equal(t, []kafka.Header{topology.CanonicalMark()}, m.Headers,
			"marked canonical, so the archiver need not decode it")
		out[rec.RequestID]++
	}
	return out
}
