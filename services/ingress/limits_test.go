package ingress

import (
	"bytes"
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// blockingSink holds every Write until release is closed.
type blockingSink struct {
	memSink
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSink) Write(ctx context.Context, es []Entry) error {
	b.entered <- struct{}{}
	<-b.release
	return b.memSink.Write(ctx, es)
}

func blocked(h *handler) *blockingSink {
	s := &blockingSink{entered: make(chan struct{}, 8), release: make(chan struct{})}
	h.sink = s
	return s
}

func TestMaxConcurrent(t *testing.T) {
	h, _ := newHandler(t, func(c *Config) { c.MaxConcurrent = 1 })
	sink := blocked(h)
	first := make(chan int)
	go func() { rec, _ := do(h, req{body: []byte(okRec)}); first <- rec.Code }()
	<-sink.entered // the first request holds the only slot

	spy := &readSpy{r: strings.NewReader(okRec)}
	rec, resp := doReader(h, req{}, spy)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, CodeOverloaded, resp.Code)
	require.Equal(t, "5", rec.Header().Get("Retry-After"))
	require.False(t, spy.read, "an overloaded request's body is not read")

	close(sink.release)
	require.Equal(t, http.StatusAccepted, <-first)
	rec, _ = do(h, req{body: []byte(okRec)})
	require.Equal(t, http.StatusAccepted, rec.Code, "the slot is free again")
	require.Zero(t, h.requests.cur.Load())
	require.Zero(t, h.inflight.cur.Load())
}

// invalidLine is a rejected record of exactly n bytes: the DLQ keeps it whole.
func invalidLine(n int) string {
	return strings.Replace(padded(n), `"status":200`, `"status":"x"`, 1)
}

func TestMaxInflightBytes(t *testing.T) {
	// Budget 256 KiB = the line buffer (4 KiB) + 63 rejected lines of 4 KiB.
	const budget = 256 << 10
	mutate := func(c *Config) { c.MaxInflightBytes = budget; c.MaxInflatedBytes = budget }
	atBound := repeat(invalidLine(4096), 63)

	t.Run("at the bound", func(t *testing.T) {
		h, sink := newHandler(t, mutate)
		rec, resp := do(h, req{body: gz(atBound), encoding: "gzip"})
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
		require.Equal(t, 63, resp.Rejected)
		require.Len(t, sink.entries, 63)
		require.Zero(t, h.inflight.cur.Load(), "released after the answer")
	})
	t.Run("one byte over", func(t *testing.T) {
		h, sink := newHandler(t, mutate)
		rec, resp := do(h, req{body: gz(append(bytes.Clone(atBound), "x\n"...)), encoding: "gzip"})
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		require.Equal(t, CodeOverloaded, resp.Code)
		require.NotEmpty(t, rec.Header().Get("Retry-After"))
		require.Empty(t, sink.entries)
		require.Zero(t, h.inflight.cur.Load())
	})
	t.Run("shared by concurrent requests", func(t *testing.T) {
		h, _ := newHandler(t, mutate)
		sink := blocked(h)
		first := make(chan int)
		go func() {
			rec, _ := do(h, req{body: gz(repeat(invalidLine(4096), 40)), encoding: "gzip"})
			first <- rec.Code
		}()
		<-sink.entered // holds 4 KiB + 40 × 4 KiB
		rec, resp := do(h, req{body: gz(repeat(invalidLine(4096), 30)), encoding: "gzip"})
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
		require.Equal(t, CodeOverloaded, resp.Code)
		close(sink.release)
		require.Equal(t, http.StatusUnprocessableEntity, <-first)
		rec, _ = do(h, req{body: gz(repeat(invalidLine(4096), 30)), encoding: "gzip"})
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, "admitted once the budget is free")
		require.Zero(t, h.inflight.cur.Load())
	})
}

// TestGzipBombMemory: bodies that inflate to exactly MaxInflatedBytes (the
// default 64 MiB) from a small gzip body do not make the heap grow with the
// inflated size (issue 12: a 126 KiB gzip body reached a 65 MiB heap). The
// body is streamed record by record; only what the sink needs is kept.
func TestGzipBombMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("inflates 3 × 64 MiB")
	}
	cfg := DefaultConfig()
	limit := int(cfg.MaxInflatedBytes)
	// 10 000 (MaxRecords) valid records, each padded by an unknown key to
	// fill the limit exactly: accepted, the padding dropped.
	lineLen := limit/cfg.MaxRecords - 1
	valid := repeat(padded(lineLen), cfg.MaxRecords)
	valid = append(valid, bytes.Repeat([]byte("\n"), limit-len(valid))...)
	// One array element as large as the whole limit: refused at MaxLineBytes.
	huge := []byte(`[{"x":"` + strings.Repeat("a", limit-10) + `"}]`)
	// Nothing but whitespace.
	blank := bytes.Repeat([]byte("\n"), limit)

	for _, tc := range []struct {
		name   string
		body   []byte
		ctype  string
		status int
	}{
		{"valid records padded with unknown keys", valid, "", http.StatusAccepted},
		{"one huge array element", huge, "application/json", http.StatusRequestEntityTooLarge},
		{"newlines", blank, "", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Len(t, tc.body, limit, "inflates to the limit exactly")
			compressed := gz(tc.body)
			require.Less(t, len(compressed), 512<<10)
			keys := writeKeys(t)
			h, _ := newHandler(t, func(c *Config) { *c = cfg; c.KeysFile = keys })
			var live uint64
			probe := &probeSink{probe: func() { live = liveHeap() }}
			h.sink = probe
			before := liveHeap()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			allocBefore := ms.TotalAlloc

			rec, _ := do(h, req{body: compressed, ctype: tc.ctype, encoding: "gzip"})

			runtime.ReadMemStats(&ms)
			allocated := ms.TotalAlloc - allocBefore
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			t.Logf("gzip body %d KiB → %d MiB inflated: %.1f MiB allocated in all",
				len(compressed)>>10, limit>>20, float64(allocated)/(1<<20))
			require.Less(t, allocated, uint64(limit/2), "allocations stay well below the inflated size")
			if tc.status == http.StatusAccepted {
				grown := int64(live) - int64(before)
				t.Logf("live heap at the sink: %+.1f MiB", float64(grown)/(1<<20))
				require.Less(t, grown, int64(8<<20), "what the request holds at the sink")
			}
		})
	}
}

type probeSink struct {
	memSink
	probe func()
}

func (p *probeSink) Write(ctx context.Context, es []Entry) error {
	p.probe() // every entry of the request is held now: the request's peak
	return nil
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
