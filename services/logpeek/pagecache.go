package logpeek

import (
	"container/list"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/archive"
)

// The page cache keeps what a page's scan of an hour found beyond the page,
// so that the next page of the same query resumes from memory instead of
// reading the hour's part files again (doc.go, "Page cache").
//
// An entry belongs to one query (tenant, range, filters: cacheKey.query)
// and one hour, and holds the hour's matching records after lo, in key
// order, up to hi (exclusive; nil: to the end of the hour): exactly the
// records a scan of the hour, as listed in files, would find in (lo, hi).
// Entries are immutable once put; a page served from one puts a new entry
// for what is left.

// Bounds of the page cache that are not configured.
const (
	// pageCacheTTL drops an entry this long after its last use.
	pageCacheTTL = 10 * time.Minute
	// matchOverhead is what one record held costs besides its line: the
	// match header (key and slice) in an entry's slice.
	matchOverhead = 64
	// entryOverhead is what an entry costs besides its records: the entry,
	// its list elements and map slot (its part-file list is added).
	entryOverhead = 512
)

// cacheKey names an entry: the query's identity (logsQuery.cacheID) and the
// hour (unix seconds).
type cacheKey struct {
	query [32]byte
	hour  int64
}

// partID is a part file as a listing showed it; a renamed-in or grown file
// changes the hour's list, and the entry no longer applies.
type partID struct {
	name string
	size int64
}

func partIDs(parts []archive.PartFile) []partID {
	out := make([]partID, len(parts))
	for i, f := range parts {
		out[i] = partID{name: f.Part.Name(), size: f.Size}
	}
	return out
}

type cacheEntry struct {
	key    cacheKey
	tenant string
	files  []partID
	lo     key     // the records after lo...
	hi     *key    // ...and before hi (nil: to the end of the hour)
	recs   []match // in key order
	size   int64   // what the entry is charged (cost)

	used        time.Time     // last put or hit
	elem, telem *list.Element // in the cache's and the tenant's lists
}

// entryCost is what an entry of the hour listed as files is charged
// besides its records.
func entryCost(files []partID) int64 {
	n := int64(entryOverhead)
	for _, f := range files {
		n += int64(len(f.name)) + 32
	}
	return n
}

// cost is what one record an entry holds is charged.
func (m match) cost() int64 { return int64(len(m.line)) + matchOverhead }

// covers reports whether the entry holds every record after `after` up to
// its end: after lies in [lo, hi).
func (e *cacheEntry) covers(after key) bool {
	return e.lo.compare(after) <= 0 && (e.hi == nil || after.compare(*e.hi) < 0)
}

// from returns the entry's records after `after` (which it covers).
func (e *cacheEntry) from(after key) []match {
	i, _ := slices.BinarySearchFunc(e.recs, after, func(m match, k key) int {
		if m.k.compare(k) <= 0 {
			return -1
		}
		return 1
	})
	return e.recs[i:]
}

// tenantShare is one tenant's entries, oldest at the back.
type tenantShare struct {
	bytes int64
	lru   list.List
}

// pageCache is the page cache: a byte budget over all entries, at most
// tenantCap of it for one tenant, entries of at most entryCap, least
// recently used evicted first, unused ones dropped after ttl.
type pageCache struct {
	budget, entryCap, tenantCap int64
	ttl                         time.Duration
	m                           *cacheMetrics

	mu      sync.Mutex
	bytes   int64
	lru     list.List // *cacheEntry, most recently used at the front
	entries map[cacheKey]*cacheEntry
	tenants map[string]*tenantShare
}

// newPageCache returns a cache of budget bytes, or nil (no cache) for 0.
// maxResponse is the server's MaxResponseBytes.
func newPageCache(budget, maxResponse int64, m *cacheMetrics) *pageCache {
	if budget <= 0 {
		return nil
	}
	return &pageCache{budget: budget, entryCap: min(budget/8, 4*maxResponse), tenantCap: budget / 2,
		ttl: pageCacheTTL, m: m, entries: map[cacheKey]*cacheEntry{}, tenants: map[string]*tenantShare{}}
}

// get returns the entry of k if it is for tenant, was filled from the part
// files the hour lists now, and covers after. An entry of other files is
// dropped (the hour changed).
func (c *pageCache) get(k cacheKey, tenant string, files []partID, after key, now time.Time) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	e := c.entries[k]
	switch {
	case e == nil || e.tenant != tenant:
		return nil, false
	case !slices.Equal(e.files, files):
		c.remove(e)
		c.m.evictions.WithLabelValues("stale").Inc()
		return nil, false
	case !e.covers(after):
		return nil, false
	}
	c.touch(e, now)
	return e, true
}

// put stores e in place of any entry of its key, evicting what it must; an
// entry over entryCap is not stored.
func (c *pageCache) put(e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if old := c.entries[e.key]; old != nil {
		c.remove(old)
	}
	if e.size > c.entryCap {
		return
	}
	for ts := c.tenants[e.tenant]; ts != nil && ts.bytes+e.size > c.tenantCap; ts = c.tenants[e.tenant] {
		c.remove(ts.lru.Back().Value.(*cacheEntry))
		c.m.evictions.WithLabelValues("tenant_share").Inc()
	}
	for c.bytes+e.size > c.budget {
		c.remove(c.lru.Back().Value.(*cacheEntry))
		c.m.evictions.WithLabelValues("budget").Inc()
	}
	ts := c.tenants[e.tenant]
	if ts == nil {
		ts = &tenantShare{}
		c.tenants[e.tenant] = ts
	}
	e.used = now
	e.elem = c.lru.PushFront(e)
	e.telem = ts.lru.PushFront(e)
	c.entries[e.key] = e
	c.bytes += e.size
	ts.bytes += e.size
	c.m.bytes.Set(float64(c.bytes))
	c.m.entries.Set(float64(len(c.entries)))
}

// drop removes e if it is still the entry of its key.
func (c *pageCache) drop(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[e.key] == e {
		c.remove(e)
	}
}

func (c *pageCache) touch(e *cacheEntry, now time.Time) {
	e.used = now
	c.lru.MoveToFront(e.elem)
	c.tenants[e.tenant].lru.MoveToFront(e.telem)
}

// expire drops the entries unused for ttl (the least recently used are at
// the back).
func (c *pageCache) expire(now time.Time) {
	for b := c.lru.Back(); b != nil; b = c.lru.Back() {
		e := b.Value.(*cacheEntry)
		if now.Sub(e.used) < c.ttl {
			return
		}
		c.remove(e)
		c.m.evictions.WithLabelValues("ttl").Inc()
	}
}

func (c *pageCache) remove(e *cacheEntry) {
	c.lru.Remove(e.elem)
	ts := c.tenants[e.tenant]
	ts.lru.Remove(e.telem)
	ts.bytes -= e.size
	if ts.lru.Len() == 0 {
		delete(c.tenants, e.tenant)
	}
	delete(c.entries, e.key)
	c.bytes -= e.size
	c.m.bytes.Set(float64(c.bytes))
	c.m.entries.Set(float64(len(c.entries)))
}

// held reports the bytes and entries held, and the bytes held for tenant.
func (c *pageCache) held(tenant string) (bytes int64, entries int, tenantBytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ts := c.tenants[tenant]; ts != nil {
		tenantBytes = ts.bytes
	}
	return c.bytes, len(c.entries), tenantBytes
}

type cacheMetrics struct {
	hits, misses prometheus.Counter
	evictions    *prometheus.CounterVec // by reason
	bytes        prometheus.Gauge
	entries      prometheus.Gauge
}
