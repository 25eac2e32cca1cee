package gen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Send posts every generated record once, batched per tenant with the
// tenant's key, counts the answers, and reports a failed request without
// stopping the run.
func TestSendBatchesPerTenantAndCounts(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{} // records per tenant
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer key-")
		if tenant == "tenant-02" {
			http.Error(w, "no", http.StatusForbidden) // this tenant's key is refused
			return
		}
		var n, bad int
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			rec, _, err := record.Decode(sc.Bytes())
			if err != nil {
				bad++
				continue
			}
			require.Equal(t, tenant, rec.Tenant, "batched per tenant")
			n++
		}
		mu.Lock()
		got[tenant] += n
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]int{"accepted": n, "rejected": bad})
	}))
	defer srv.Close()

	g := New(Config{Seed: 4, Tenants: 3, Start: time.Now(), Rate: 100, Malformed: 0.05})
	var kept int
	var failures []error
	p := &Poster{URL: srv.URL, KeyTemplate: "key-{tenant}", Client: srv.Client()}
	sum, err := p.Send(context.Background(), g, SendConfig{Count: 3000, Batch: 100, Concurrency: 3},
		func(record.Record) { kept++ }, func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() })
	require.NoError(t, err)
	require.Equal(t, 3000, sum.Generated)
	require.Equal(t, sum.Generated-sum.Malformed, kept, "keep sees every valid record")
	require.Positive(t, sum.FailedRequests)
	require.Len(t, failures, sum.FailedRequests)
	require.ErrorContains(t, failures[0], "HTTP 403")
	require.Equal(t, got["tenant-01"]+got["tenant-03"], sum.Accepted)
	require.Zero(t, got["tenant-02"])
}

// Send stops generating when ctx ends, and says so.
func TestSendStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"accepted":0,"rejected":0}`))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p := &Poster{URL: srv.URL, KeyTemplate: "k", Client: srv.Client()}
	sum, err := p.Send(ctx, New(Config{Seed: 1, Tenants: 1, Start: time.Now(), Rate: 50}), SendConfig{Rate: 50, Batch: 10, Concurrency: 1}, nil, func(error) {})
	require.True(t, errors.Is(err, context.DeadlineExceeded))
	require.Less(t, sum.Generated, 50, "paced at 50 records/s for 0.3 s")
	require.Positive(t, sum.Generated)
}

func TestWriteNDJSON(t *testing.T) {
	var b bytes.Buffer
	sum, err := WriteNDJSON(context.Background(), New(Config{Seed: 2, Tenants: 2, Start: time.Now(), Rate: 10}), &b, 25, nil)
	require.NoError(t, err)
	require.Equal(t, 25, sum.Generated)
	require.Equal(t, 25, strings.Count(b.String(), "\n"))
}
