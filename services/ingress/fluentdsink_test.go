package ingress

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/forwardtest"
	"github.com/hourglass-io/hourglass/internal/record"
)

func fluentdQuiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startForward starts a forward-protocol server on addr with store and stops
// it when the test ends.
func startForward(t *testing.T, addr string, store *forwardtest.Store) *forwardtest.Server {
	t.Helper()
	srv, err := forwardtest.Start(addr, store, fluentdQuiet())
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func newFluentdSink(t *testing.T, addr string) *FluentdSink {
	t.Helper()
	s, err := NewFluentdSink(FluentdSinkConfig{Addr: addr, Conns: 4, Timeout: 2 * time.Second,
		MaxRetry: 4, RetryWait: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawEntry is an accepted record with a unique request id, canonical as the
// handler makes it.
func rawEntry(t *testing.T, id string) Entry {
	t.Helper()
	rtt := 12.25
	rec := record.Record{Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 123_000_000, time.UTC), Tenant: "acme",
		RequestID: id, Method: "POST", Scheme: "https", Host: "acme.example", Path: "/v1/logs", Status: 202,
		BytesIn: 1234, BytesOut: 56, DurationMS: 7, RTTMS: &rtt, ClientIP: "127.0.0.2", Protocol: "HTTP/1.1"}
	b, err := json.Marshal(rec)
	require.NoError(t, err)
	return Entry{Stream: StreamRaw, Tenant: "acme", Value: b}
}

// asRecord re-encodes a received map as JSON (what the aggregator's kafka2
// output does) and decodes it with the schema.
func asRecord(t *testing.T, m map[string]any) record.Record {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	rec, unknown, err := record.Decode(b)
	require.NoError(t, err, "%s", b)
	require.Empty(t, unknown)
	return rec
}

func TestFluentdSinkAckedDelivery(t *testing.T) {
	store := forwardtest.NewStore()
	srv := startForward(t, "127.0.0.1:0", store)
	sink := newFluentdSink(t, srv.Addr())
	require.NoError(t, sink.Ready(context.Background()))

	const batches, perBatch = 10, 300
	want := map[string]record.Record{}
	for b := range batches {
		var entries []Entry
		for i := range perBatch {
			e := rawEntry(t, fmt.Sprintf("r-%d-%d", b, i))
			entries = append(entries, e)
			rec, _, err := record.Decode(e.Value)
			require.NoError(t, err)
			want[rec.RequestID] = rec
		}
		entries = append(entries, Entry{Stream: StreamDLQ, Tenant: "acme", Value: []byte(`{"status":"x"}`), Reason: "wrong_type"})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		require.NoError(t, sink.Write(ctx, entries))
		cancel()
		// Write returned: every entry of the batch is already in the store.
		require.Equal(t, (b+1)*(perBatch+1), store.Len())
	}

	got := map[string]int{}
	var dlq int
	for _, ev := range store.Events() {
		require.NotEmpty(t, ev.Chunk, "every message asked for an ack")
		switch ev.Tag {
		case FluentdRawTag:
			rec := asRecord(t, ev.Record)
			require.Equal(t, want[rec.RequestID], rec, "the record survives map → msgpack → JSON unchanged")
			require.Equal(t, rec.Timestamp.Truncate(time.Second), ev.Time, "event time is the record's timestamp")
			got[rec.RequestID]++
		case FluentdDLQTag:
			require.Equal(t, map[string]any{"tenant": "acme", "reason": "wrong_type", "stage": "ingress",
				"line": `{"status":"x"}`}, ev.Record)
			dlq++
		default:
			t.Fatalf("unexpected tag %q", ev.Tag)
		}
	}
	require.Len(t, got, batches*perBatch)
	for id, n := range got {
		require.Equal(t, 1, n, id)
	}
	require.Equal(t, batches, dlq)
	require.Zero(t, store.Duplicates())
}

// TestFluentdSinkServerRestart crashes the aggregator in the middle of a run
// and loses an ack before that; a writer that retries failed writes (as an
// HTTP client retries a 503) ends with every record delivered, some twice.
func TestFluentdSinkServerRestart(t *testing.T) {
	store := forwardtest.NewStore()
	srv := startForward(t, "127.0.0.1:0", store)
	addr := srv.Addr()
	sink := newFluentdSink(t, addr)

	const batches, perBatch = 40, 50
	srv.DropAcks(3)                        // stored, then the connection drops: duplicates
	srv.CrashAfter(batches * perBatch / 2) // halfway: the server dies before storing

	type result struct {
		failures int
		err      error
	}
	all := make([][]Entry, batches)
	for b := range all {
		for i := range perBatch {
			all[b] = append(all[b], rawEntry(t, fmt.Sprintf("r-%d-%d", b, i)))
		}
	}
	done := make(chan result, 1)
	failed := make(chan struct{}, 1) // a Write failed: the outage is visible to the caller
	go func() {
		var res result
		deadline := time.Now().Add(60 * time.Second)
		for b, entries := range all {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := sink.Write(ctx, entries)
				cancel()
				if err == nil {
					break
				}
				res.failures++
				select {
				case failed <- struct{}{}:
				default:
				}
				if time.Now().After(deadline) {
					res.err = fmt.Errorf("batch %d still failing: %w", b, err)
					done <- res
					return
				}
				time.Sleep(100 * time.Millisecond) // the client's back-off before retrying a 503
			}
		}
		done <- res
	}()

	select {
	case <-srv.Crashed():
	case <-time.After(60 * time.Second):
		t.Fatal("the injected crash never fired")
	}
	select { // stay down until the caller saw a failed Write (its 503)
	case <-failed:
	case <-time.After(30 * time.Second):
		t.Fatal("no Write failed while the aggregator was down")
	}
	srv2 := startForward(t, addr, store) // restart on the same address
	res := <-done
	require.NoError(t, res.err)

	got := map[string]int{}
	for _, ev := range store.Events() {
		got[ev.Record["request_id"].(string)]++
	}
	var dups int
	for b := range batches {
		for i := range perBatch {
			id := fmt.Sprintf("r-%d-%d", b, i)
			require.Positive(t, got[id], "record %s was acknowledged but is not in the store", id)
			dups += got[id] - 1
		}
	}
	require.Len(t, got, batches*perBatch, "nothing but the records sent")
	require.Equal(t, batches*perBatch+dups, store.Len())
	require.Positive(t, store.Duplicates(), "the lost acks made the client resend chunks")
	require.GreaterOrEqual(t, dups, store.Duplicates())
	require.Positive(t, srv2.Messages(), "the restarted server took over")
	require.Positive(t, res.failures, "the outage failed writes, which the caller retried")
	t.Logf("%d records: %d stored, %d duplicates (%d from chunks the client resent, the rest from %d failed writes the caller retried)",
		batches*perBatch, store.Len(), dups, store.Duplicates(), res.failures)
}

// startFluentdIngress runs the whole intake with sink until the test ends and
// returns a poster of one record (its status and Retry-After) and a /readyz
// prober.
func startFluentdIngress(t *testing.T, sink *FluentdSink) (post func(id string) (int, string), readyz func() int) {
	t.Helper()
	dir := t.TempDir()
	d := sha256.Sum256([]byte("fluentd-test-key"))
	keys := filepath.Join(dir, "keys.yaml")
	require.NoError(t, os.WriteFile(keys, []byte("keys:\n  - {tenant: acme, sha256: "+hex.EncodeToString(d[:])+"}\n"), 0o600))
	cfg := DefaultConfig()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.KeysFile = keys
	cfg.RetryAfter = time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	svc, err := New(cfg, sink, fluentdQuiet(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, svc.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-stopped)
		require.NoError(t, sink.Close())
	})

	base := "http://" + svc.Addr()
	post = func(id string) (int, string) {
		body := `{"timestamp":"` + time.Now().UTC().Format(time.RFC3339) + `","method":"GET","path":"/","status":200,"duration_ms":1,"request_id":"` + id + `"}`
		req, err := http.NewRequest(http.MethodPost, base+"/v1/logs", bytes.NewBufferString(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer fluentd-test-key")
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	readyz = func() int {
		resp, err := http.Get(base + "/readyz")
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	return post, readyz
}

// TestIngressFluentdDownThenUp runs the whole intake with the Fluentd sink:
// while the aggregator is down requests get 503 and /readyz fails; once it is
// up the same ingress process accepts again.
func TestIngressFluentdDownThenUp(t *testing.T) {
	// A free port with nothing listening: take one, then close it.
	probe := startForward(t, "127.0.0.1:0", forwardtest.NewStore())
	addr := probe.Addr()
	require.NoError(t, probe.Close())

	sink, err := NewFluentdSink(FluentdSinkConfig{Addr: addr, Timeout: time.Second, MaxRetry: 3, RetryWait: 50 * time.Millisecond})
	require.NoError(t, err)
	post, readyz := startFluentdIngress(t, sink)

	require.Equal(t, http.StatusServiceUnavailable, readyz())
	status, retryAfter := post("down-1")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "1", retryAfter)

	store := forwardtest.NewStore()
	startForward(t, addr, store)
	require.Eventually(t, func() bool { return readyz() == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	var accepted int
	require.Eventually(t, func() bool {
		accepted++
		s, _ := post(fmt.Sprintf("up-%d", accepted))
		return s == http.StatusAccepted
	}, 15*time.Second, 100*time.Millisecond, "the ingress recovers without a restart")
	ids := map[string]bool{}
	for _, ev := range store.Events() {
		ids[ev.Record["request_id"].(string)] = true
	}
	require.True(t, ids[fmt.Sprintf("up-%d", accepted)], "the 202'd record is at the aggregator")
}
