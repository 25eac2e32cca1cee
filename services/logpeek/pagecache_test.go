package logpeek

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/telemetry/telemetrytest"
)

// countFS counts the files opened.
type countFS struct {
	archive.FS
	opens atomic.Int64
}

func (c *countFS) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	c.opens.Add(1)
	return c.FS.Open(ctx, name)
}

// cacheServer is the API over a counted archive, on a clock the test sets.
type cacheServer struct {
	*httptest.Server
	s   *Server
	fs  *countFS
	reg *prometheus.Registry
	now atomic.Int64 // unix nanoseconds
}

// serveCounted serves the API over fsys with cfg; its clock stands at now.
func serveCounted(t *testing.T, cfg Config, fsys archive.FS, now time.Time) *cacheServer {
	t.Helper()
	cs := &cacheServer{fs: &countFS{FS: fsys}, reg: prometheus.NewRegistry()}
	cs.now.Store(now.UnixNano())
	s, err := New(cfg, cs.fs, testTokens(t), slog.New(slog.DiscardHandler), cs.reg)
	require.NoError(t, err)
	s.now = func() time.Time { return time.Unix(0, cs.now.Load()).UTC() }
	cs.s = s
	cs.Server = httptest.NewServer(s.Handler())
	t.Cleanup(cs.Close)
	return cs
}

func (cs *cacheServer) advance(d time.Duration) { cs.now.Add(int64(d)) }

func (cs *cacheServer) metric(t *testing.T, name string) float64 {
	return telemetrytest.Sum(t, cs.reg, name)
}

// page gets one /v1/logs answer (status 200) and its next cursor.
func (cs *cacheServer) page(t *testing.T, token string, p url.Values) (body []byte, next string) {
	t.Helper()
	res, body := (&testServer{Server: cs.Server}).get(t, token, "/v1/logs", p)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	_, m := readLogs(t, body)
	require.Empty(t, m.Error)
	return body, m.NextCursor
}

// pages follows the cursors of query p to its end and returns the answers.
func (cs *cacheServer) pages(t *testing.T, token string, p url.Values) [][]byte {
	t.Helper()
	out, err := cs.fetchPages(token, p)
	require.NoError(t, err)
	return out
}

// fetchPages is pages for any goroutine.
func (cs *cacheServer) fetchPages(token string, p url.Values) ([][]byte, error) {
	p = maps.Clone(p)
	p.Del("cursor")
	var out [][]byte
	for len(out) < 5000 {
		req, err := http.NewRequest(http.MethodGet, cs.URL+"/v1/logs?"+p.Encode(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := cs.Client().Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%d %v %s", res.StatusCode, err, body)
		}
		out = append(out, body)
		last := body[bytes.LastIndexByte(body[:len(body)-1], '\n')+1:]
		var m struct {
			Meta meta `json:"_meta"`
		}
		if err := json.Unmarshal(last, &m); err != nil {
			return nil, fmt.Errorf("meta line %q: %w", last, err)
		}
		if m.Meta.Error != nil {
			return nil, fmt.Errorf("page %d: %v", len(out), m.Meta.Error)
		}
		if m.Meta.NextCursor == "" {
			return out, nil
		}
		p.Set("cursor", m.Meta.NextCursor)
	}
	return nil, errors.New("the pages do not end")
}

// TestPageCacheSameAnswers pages through queries whose hours hold many
// pages, with the cache and without, reading one part file at a time or
// four, on the same archive and clock: every answer is the same, byte for
// byte (records, order, meta, cursors), and the cached server served pages
// from the cache.
func TestPageCacheSameAnswers(t *testing.T) {
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	recs := writeArchiveOf(t, fsys, 2, 12_000) // ~2 000 records per tenant-hour, ~10 files
	big, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	// Records of ~1.5 KiB: over a 1 KiB answer, each page is one record
	// sent whatever its size.
	bigRecs := writeArchiveGen(t, big, gen.Config{Seed: 5, Tenants: 1, RecordSize: 1500}, 600)
	now := time.Now()
	hours := func(from, to time.Time) url.Values { return params("tenant-01", from, to) }
	all := hours(t0.Add(-time.Hour), t0.Add(4*time.Hour))
	cases := []struct {
		name       string
		fsys       archive.FS
		p          url.Values
		maxResp    int64
		cacheBytes int64
		noHits     bool // entries smaller than a page serve none
	}{
		{"limit pages", fsys, with(all, "limit", "500"), 0, 0, false},
		{"size_limit pages", fsys, with(all, "limit", "10000"), 64 << 10, 0, false},
		{"field filter", fsys, with(with(all, "status", "2xx"), "limit", "300"), 0, 0, false},
		{"text filter", fsys, with(with(all, "q", `"method":"GET"`), "limit", "250"), 0, 0, false},
		{"entry cap under an hour, size_limit", fsys, with(all, "limit", "10000"), 64 << 10, 2 << 20, false},
		{"entry cap under an hour, limit", fsys, with(all, "limit", "100"), 0, 1 << 20, false},
		{"entry cap under a page", fsys, with(all, "limit", "10000"), 64 << 10, 256 << 10, true},
		{"inside one hour", fsys, with(hours(t0.Add(10*time.Minute), t0.Add(20*time.Minute)), "limit", "7"), 0, 0, false},
		{"1 KiB answers", fsys, with(hours(t0, t0.Add(15*time.Minute)), "limit", "10000"), 1 << 10, 0, false},
		{"records over the answer bound", big, with(all, "limit", "10000"), 1 << 10, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if c.maxResp > 0 {
				cfg.MaxResponseBytes = c.maxResp
			}
			off := cfg
			off.PageCacheBytes = 0
			if c.cacheBytes > 0 {
				cfg.PageCacheBytes = c.cacheBytes
			}
			plain := serveCounted(t, off, c.fsys, now)
			plain.s.scanWorkers = 1 // the reference: no cache, files read in order
			cached := serveCounted(t, cfg, c.fsys, now)
			cached.s.scanWorkers = 4
			wantPages := plain.pages(t, "tok-one", c.p)
			got := cached.pages(t, "tok-one", c.p)
			parallel := serveCounted(t, off, c.fsys, now)
			parallel.s.scanWorkers = 4
			for i, body := range parallel.pages(t, "tok-one", c.p) {
				require.Equal(t, string(wantPages[i]), string(body), "no cache, 4 files at once: page %d", i+1)
			}
			require.Greater(t, len(wantPages), 8, "several pages an hour")
			for i := range min(len(wantPages), len(got)) {
				require.Equal(t, string(wantPages[i]), string(got[i]), "page %d", i+1)
			}
			require.Len(t, got, len(wantPages))
			if c.noHits {
				require.Zero(t, cached.metric(t, "hourglass_logpeek_page_cache_hits_total"))
			} else {
				require.Positive(t, cached.metric(t, "hourglass_logpeek_page_cache_hits_total"))
				require.Less(t, cached.fs.opens.Load(), plain.fs.opens.Load())
			}
			// Pages asked again, out of order, by their cursors: an entry
			// serves only positions it holds every record after.
			cursors := []string{""}
			for _, b := range wantPages[:len(wantPages)-1] {
				_, m := readLogs(t, b)
				cursors = append(cursors, m.NextCursor)
			}
			for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(len(cursors))[:min(len(cursors), 12)] {
				p := maps.Clone(c.p)
				if cursors[i] != "" {
					p.Set("cursor", cursors[i])
				}
				body, _ := cached.page(t, "tok-one", p)
				require.Equal(t, string(wantPages[i]), string(body), "page %d again", i+1)
			}
			require.Zero(t, plain.metric(t, "hourglass_logpeek_page_cache_hits_total"))
			require.Zero(t, plain.metric(t, "hourglass_logpeek_page_cache_misses_total"), "no cache, no lookups")

			// The pages join to the query's records, each once.
			var ids []string
			for _, b := range got {
				rs, _ := readLogs(t, b)
				for _, r := range rs {
					ids = append(ids, r.RequestID)
				}
			}
			src := recs
			if c.fsys == big {
				src = bigRecs
			}
			from, _ := time.Parse(time.RFC3339Nano, c.p.Get("from"))
			to, _ := time.Parse(time.RFC3339Nano, c.p.Get("to"))
			slices.Sort(ids)
			require.Equal(t, want(src, func(r *record.Record) bool {
				line, _ := json.Marshal(r)
				return r.Tenant == "tenant-01" && !r.Timestamp.Before(from) && r.Timestamp.Before(to) &&
					(c.p.Get("status") == "" || r.Status/100 == 2) && bytes.Contains(line, []byte(c.p.Get("q")))
			}), ids)
		})
	}
}

// TestPageCacheOpensNothing: the second page of an hour the first page
// stopped in reads no part file of that hour, and counts its compressed
// bytes in scanned_bytes as a page that reads it does.
func TestPageCacheOpensNothing(t *testing.T) {
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	writeArchiveOf(t, fsys, 1, 3000) // ~1 000 records an hour
	cs := serveCounted(t, DefaultConfig(), fsys, time.Now())
	p := with(params("tenant-01", t0, t0.Add(2*time.Hour)), "limit", "600")
	hourBytes := func(start time.Time) int64 {
		parts, _, err := archive.ListHour(context.Background(), fsys, archive.HourOf("tenant-01", start))
		require.NoError(t, err)
		var n int64
		for _, f := range parts {
			n += f.Size
		}
		return n
	}

	// Page 1: ~600 of the first hour's ~1 000.
	body, next := cs.page(t, "tok-one", p)
	_, m := readLogs(t, body)
	require.Equal(t, "limit", m.Stopped)
	require.Positive(t, cs.fs.opens.Load())
	require.Equal(t, hourBytes(t0), m.ScannedBytes)

	// Page 2: the rest of the first hour from the cache, then the start of
	// the second hour, read.
	cs.fs.opens.Store(0)
	body, next = cs.page(t, "tok-one", with(p, "cursor", next))
	recs, m := readLogs(t, body)
	require.Len(t, recs, 600)
	require.Equal(t, time.Hour, recs[len(recs)-1].Timestamp.Truncate(time.Hour).Sub(t0), "page 2 ends in the second hour")
	require.Equal(t, 1.0, cs.metric(t, "hourglass_logpeek_page_cache_hits_total"))
	require.Equal(t, hourBytes(t0)+hourBytes(t0.Add(time.Hour)), m.ScannedBytes, "a cached hour counts its compressed bytes")
	parts, _, err := archive.ListHour(context.Background(), fsys, archive.HourOf("tenant-01", t0.Add(time.Hour)))
	require.NoError(t, err)
	require.Equal(t, int64(len(parts)), cs.fs.opens.Load(), "only the second hour's files are opened")

	// Page 3, inside the second hour: nothing opened.
	cs.fs.opens.Store(0)
	body, _ = cs.page(t, "tok-one", with(p, "cursor", next))
	recs, m = readLogs(t, body)
	require.NotEmpty(t, recs)
	require.Zero(t, cs.fs.opens.Load(), "a page inside a cached hour opens no part file")
	require.Equal(t, 2.0, cs.metric(t, "hourglass_logpeek_page_cache_hits_total"))
	require.Equal(t, hourBytes(t0.Add(time.Hour)), m.ScannedBytes)
}

// writePart writes records into a new part file of their hour.
func writePart(t *testing.T, fsys archive.FS, h archive.Hour, part archive.Part, recs []record.Record) {
	t.Helper()
	var raw bytes.Buffer
	for _, r := range recs {
		line, err := json.Marshal(r)
		require.NoError(t, err)
		raw.Write(append(line, '\n'))
	}
	require.NoError(t, archive.WriteFile(context.Background(), fsys, h.Dir()+"/"+part.Name(), gzipped(t, raw.Bytes())))
}

func gzipped(t *testing.T, raw []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	_, err := zw.Write(raw)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return z.Bytes()
}

// TestPageCacheNewPartFile: a part file that appears in an hour between two
// pages, or one that changes size, makes the hour's entry miss; the next
// page has the new records after its cursor, in order, as a server without
// the cache answers.
func TestPageCacheNewPartFile(t *testing.T) {
	for _, change := range []string{"new file", "grown file"} {
		t.Run(change, func(t *testing.T) {
			dir := t.TempDir()
			fsys, err := archive.NewLocal(dir)
			require.NoError(t, err)
			writeArchiveOf(t, fsys, 1, 3000)
			now := time.Now()
			cs := serveCounted(t, DefaultConfig(), fsys, now)
			plain := serveCounted(t, func() Config { c := DefaultConfig(); c.PageCacheBytes = 0; return c }(), fsys, now)
			p := with(params("tenant-01", t0, t0.Add(time.Hour)), "limit", "300")
			_, next := cs.page(t, "tok-one", p)
			c, err := decodeCursor(next)
			require.NoError(t, err)
			at := time.Unix(0, c.Key.TS).UTC()

			// Records of the hour around the cursor: some before it (never
			// sent: the cursor is past them), some after.
			h := archive.HourOf("tenant-01", t0)
			var add []record.Record
			for i := range 40 {
				start := at.Add(time.Duration(i-10)*time.Second + time.Millisecond) // 10 before the cursor, 30 after
				r := gen.New(gen.Config{Seed: uint64(100 + i), Tenants: 1, Start: start}).Next()
				require.Equal(t, start, r.Timestamp)
				r.RequestID = fmt.Sprintf("added-%02d", i)
				add = append(add, r)
			}
			parts, _, err := archive.ListHour(context.Background(), fsys, h)
			require.NoError(t, err)
			switch change {
			case "new file":
				writePart(t, fsys, h, archive.Part{Partition: 7, First: 0, Last: 39}, add)
			case "grown file":
				// The same name, more bytes (an archive never does this;
				// a listing that shows it must still miss).
				f := parts[len(parts)-1]
				name := filepath.Join(dir, filepath.FromSlash(f.Path()))
				old, err := os.ReadFile(name)
				require.NoError(t, err)
				var raw bytes.Buffer
				for _, r := range add {
					line, _ := json.Marshal(r)
					raw.Write(append(line, '\n'))
				}
				// A second gzip member: the file reads as its old lines
				// then the new ones.
				require.NoError(t, os.WriteFile(name, append(old, gzipped(t, raw.Bytes())...), 0o644))
			}

			opened := cs.fs.opens.Load()
			got, _ := cs.page(t, "tok-one", with(p, "cursor", next))
			require.Positive(t, cs.fs.opens.Load()-opened, "the changed hour is read again")
			require.Zero(t, cs.metric(t, "hourglass_logpeek_page_cache_hits_total"))
			require.Equal(t, 1.0, telemetrytest.Value(t, cs.reg, "hourglass_logpeek_page_cache_evictions_total", "reason", "stale"))
			wantBody, _ := plain.page(t, "tok-one", with(p, "cursor", next))
			require.Equal(t, string(wantBody), string(got))
			rs, _ := readLogs(t, got)
			var added []string
			for i, r := range rs {
				if strings.HasPrefix(r.RequestID, "added-") {
					added = append(added, r.RequestID)
				}
				if i > 0 {
					require.False(t, r.Timestamp.Before(rs[i-1].Timestamp))
				}
			}
			var wantAdded []string
			for i := 10; i < 40; i++ {
				wantAdded = append(wantAdded, fmt.Sprintf("added-%02d", i))
			}
			require.Equal(t, wantAdded, added, "the new records after the cursor, in order, none before it")
		})
	}
}

// TestPageCacheIsolation: an entry filled for one query is never served to
// another tenant's query, nor to the same tenant's query with other
// filters or range, even with a cursor at the very same position.
func TestPageCacheIsolation(t *testing.T) {
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	writeArchiveOf(t, fsys, 2, 6000)
	now := time.Now()
	cs := serveCounted(t, DefaultConfig(), fsys, now)
	base := with(params("tenant-01", t0, t0.Add(time.Hour)), "limit", "200")
	_, next := cs.page(t, "tok-admin", base)
	c, err := decodeCursor(next)
	require.NoError(t, err)
	bytes0, entries, _ := cs.s.cache.held("tenant-01")
	require.Equal(t, 1, entries)
	require.Positive(t, bytes0)

	others := map[string]url.Values{
		"other tenant":  with(base, "tenant", "tenant-02"),
		"other filter":  with(base, "status", "5xx"),
		"other text":    with(base, "q", "GET"),
		"other range":   with(base, "to", t0.Add(50*time.Minute).Format(time.RFC3339)),
		"other request": with(base, "request_id", "x"),
	}
	for name, p := range others {
		t.Run(name, func(t *testing.T) {
			hits := cs.metric(t, "hourglass_logpeek_page_cache_hits_total")
			opened := cs.fs.opens.Load()
			body, _ := cs.page(t, "tok-admin", with(p, "cursor", mkCursorAt(t, p, c.Key, now)))
			require.Equal(t, hits, cs.metric(t, "hourglass_logpeek_page_cache_hits_total"), "no hit")
			require.Positive(t, cs.fs.opens.Load()-opened, "the hour is read")
			rs, _ := readLogs(t, body)
			for _, r := range rs {
				require.Equal(t, p.Get("tenant"), r.Tenant)
			}
		})
	}
	// The query itself hits.
	hits := cs.metric(t, "hourglass_logpeek_page_cache_hits_total")
	_, next = cs.page(t, "tok-admin", with(base, "cursor", next))
	require.Equal(t, hits+1, cs.metric(t, "hourglass_logpeek_page_cache_hits_total"))
	c, err = decodeCursor(next)
	require.NoError(t, err)

	// A token that may not read the tenant is refused before the cache is
	// looked at, cursor or not.
	res, body := (&testServer{Server: cs.Server}).get(t, "tok-two", "/v1/logs", with(base, "cursor", next))
	require.Equal(t, http.StatusForbidden, res.StatusCode, string(body))

	// At the cache itself: an entry is served to its tenant only, whatever
	// the key says.
	q, aerr := parseLogs(base, DefaultConfig(), now)
	require.Nil(t, aerr)
	k := cacheKey{query: q.cacheID(), hour: t0.Unix()}
	parts, _, err := archive.ListHour(context.Background(), fsys, archive.HourOf("tenant-01", t0))
	require.NoError(t, err)
	_, ok := cs.s.cache.get(k, "tenant-01", partIDs(parts), c.Key, now)
	require.True(t, ok)
	_, ok = cs.s.cache.get(k, "tenant-02", partIDs(parts), c.Key, now)
	require.False(t, ok)
}

// mkCursorAt is a cursor of query p at k.
func mkCursorAt(t *testing.T, p url.Values, k key, now time.Time) string {
	t.Helper()
	q, aerr := parseLogs(p, DefaultConfig(), now)
	require.Nil(t, aerr)
	return encodeCursor(q, k, now)
}

func TestCacheIDUnambiguous(t *testing.T) {
	a := &logsQuery{span: span{tenant: "a", from: t0, to: t0.Add(time.Hour)}, minDuration: -1, requestID: "x\x00", q: []byte("y")}
	b := &logsQuery{span: span{tenant: "a", from: t0, to: t0.Add(time.Hour)}, minDuration: -1, requestID: "x", q: []byte("\x00y")}
	require.Equal(t, a.fingerprint(), b.fingerprint(), "the cursor's fingerprint does not tell them apart")
	require.NotEqual(t, a.cacheID(), b.cacheID(), "the cache key does")
	c := *a
	c.tenant = "b"
	require.NotEqual(t, a.cacheID(), c.cacheID())
}

// testEntry is an entry of tenant for hour h holding records of size bytes in all.
func testEntry(tenant string, h int64, size int64) *cacheEntry {
	return &cacheEntry{key: cacheKey{query: [32]byte{byte(h)}, hour: h}, tenant: tenant, size: size}
}

// TestPageCacheBounds: the budget holds at its bound, the least recently
// used entry goes first, one tenant holds at most half, an entry over the
// cap is not kept, and an entry unused for the TTL is gone.
func TestPageCacheBounds(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	c := newPageCache(8000, 1<<20, m.cache)
	require.Nil(t, newPageCache(0, 1<<20, m.cache), "0 disables the cache")
	require.Equal(t, int64(1000), c.entryCap)
	require.Equal(t, int64(4000), c.tenantCap)
	now := t0
	has := func(tenant string, h int64) bool {
		_, ok := c.get(cacheKey{query: [32]byte{byte(h)}, hour: h}, tenant, nil, key{Hour: h}, now)
		return ok
	}
	check := func() {
		t.Helper()
		held, entries, _ := c.held("")
		require.LessOrEqual(t, held, c.budget)
		require.Equal(t, float64(held), telemetrytest.Sum(t, reg, "hourglass_logpeek_page_cache_bytes"))
		require.Equal(t, float64(entries), telemetrytest.Sum(t, reg, "hourglass_logpeek_page_cache_entries"))
		for _, tn := range []string{"a", "b", "c"} {
			_, _, tb := c.held(tn)
			require.LessOrEqual(t, tb, c.tenantCap)
		}
	}
	// Tenants a, b, c put 1000-byte entries in turn: 8 fill the budget
	// exactly (a and b each at most half).
	tenants := []string{"a", "b", "c", "a", "b", "c", "a", "b"}
	for i, tn := range tenants {
		c.put(testEntry(tn, int64(i), 1000), now)
		check()
	}
	held, entries, _ := c.held("")
	require.Equal(t, int64(8000), held, "exactly at the budget")
	require.Equal(t, 8, entries)
	require.True(t, has("c", 2), "c's first entry, now the most recently used")

	// One more: the least recently used (a's first) goes.
	c.put(testEntry("c", 8, 1000), now)
	check()
	require.False(t, has("a", 0))
	require.True(t, has("b", 1))
	require.True(t, has("c", 2))
	require.Equal(t, 1.0, telemetrytest.Value(t, reg, "hourglass_logpeek_page_cache_evictions_total", "reason", "budget"))

	// c holds 3000; a fourth and fifth entry of c take its own oldest, not
	// another tenant's: c holds at most half.
	c.put(testEntry("c", 9, 1000), now)
	check()
	_, _, cb := c.held("c")
	require.Equal(t, int64(4000), cb)
	c.put(testEntry("c", 10, 1000), now)
	check()
	_, _, cb = c.held("c")
	require.Equal(t, int64(4000), cb)
	require.Equal(t, 1.0, telemetrytest.Value(t, reg, "hourglass_logpeek_page_cache_evictions_total", "reason", "tenant_share"))
	require.True(t, has("b", 1), "another tenant's entry stays")

	// An entry over the cap is not kept (and replaces nothing else).
	held, _, _ = c.held("")
	c.put(testEntry("a", 11, 1001), now)
	check()
	require.False(t, has("a", 11))
	held2, _, _ := c.held("")
	require.Equal(t, held, held2)

	// The TTL: an entry used within it stays, one unused for it goes.
	now = now.Add(pageCacheTTL - time.Second)
	require.True(t, has("b", 1))
	now = now.Add(time.Second)
	require.False(t, has("c", 9), "unused for the TTL")
	require.True(t, has("b", 1), "used a second ago")
	_, entries, _ = c.held("")
	require.Equal(t, 1, entries, "every other entry expired at this access")
	require.Positive(t, telemetrytest.Value(t, reg, "hourglass_logpeek_page_cache_evictions_total", "reason", "ttl"))
	check()
}

// TestPageCacheBudgetEndToEnd: queries of two tenants paged concurrently
// against a small cache: every answer is right, and the cache never held
// more than its budget nor one tenant more than half.
func TestPageCacheBudgetEndToEnd(t *testing.T) {
	fsys, err := archive.NewLocal(t.TempDir())
	require.NoError(t, err)
	writeArchiveOf(t, fsys, 3, 9000)
	now := time.Now()
	cfg := DefaultConfig()
	cfg.PageCacheBytes = 1 << 20 // entries of at most 128 KiB: ~400 of an hour's ~1 000 records
	cs := serveCounted(t, cfg, fsys, now)
	off := cfg
	off.PageCacheBytes = 0
	plain := serveCounted(t, off, fsys, now)

	var maxHeld, maxTenant atomic.Int64
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			held, _, _ := cs.s.cache.held("")
			maxHeld.Store(max(maxHeld.Load(), held))
			for _, tn := range []string{"tenant-01", "tenant-02", "tenant-03"} {
				_, _, tb := cs.s.cache.held(tn)
				maxTenant.Store(max(maxTenant.Load(), tb))
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	queries := []url.Values{}
	for _, tn := range []string{"tenant-01", "tenant-02", "tenant-03"} {
		for _, limit := range []string{"97", "301"} {
			queries = append(queries, with(params(tn, t0, t0.Add(3*time.Hour)), "limit", limit))
		}
	}
	got := make([][][]byte, len(queries))
	errc := make(chan error, len(queries))
	for i, p := range queries {
		go func() {
			var err error
			got[i], err = cs.fetchPages("tok-admin", p)
			errc <- err
		}()
	}
	for range queries {
		require.NoError(t, <-errc)
	}
	close(done)
	<-watched
	for i, p := range queries {
		want := plain.pages(t, "tok-admin", p)
		require.Len(t, got[i], len(want))
		for j := range want {
			require.Equal(t, string(want[j]), string(got[i][j]), "query %d page %d", i, j+1)
		}
	}
	require.LessOrEqual(t, maxHeld.Load(), cfg.PageCacheBytes)
	require.LessOrEqual(t, maxTenant.Load(), cfg.PageCacheBytes/2)
	require.Positive(t, maxHeld.Load())
	require.Positive(t, cs.metric(t, "hourglass_logpeek_page_cache_hits_total"))
}
