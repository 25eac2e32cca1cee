package logpeek

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/auth"
	"github.com/hourglass-io/hourglass/internal/record"
)

// Server is the log-peek API.
type Server struct {
	cfg    Config
	fs     archive.FS
	tokens atomic.Pointer[auth.Tokens]
	log    *slog.Logger
	m      *metrics
	mux    *http.ServeMux
	// scans holds one token per request reading the archive (MaxConcurrent).
	scans chan struct{}
	// cache keeps the rest of an hour a page stopped in (nil: no cache).
	cache *pageCache
	// scanWorkers is how many part files of an hour a request reads at once.
	scanWorkers int
	now         func() time.Time
}

// New builds the API over the archive fsys.
func New(cfg Config, fsys archive.FS, tokens *auth.Tokens, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("logpeek: config: %w", err)
	}
	if fsys == nil || tokens == nil {
		return nil, errors.New("logpeek: an archive and a tokens file are required")
	}
	s := &Server{cfg: cfg, fs: fsys, log: log.With("component", "logpeek"), m: newMetrics(reg), mux: http.NewServeMux(),
		scans: make(chan struct{}, cfg.MaxConcurrent), now: time.Now}
	s.cache = newPageCache(cfg.PageCacheBytes, cfg.MaxResponseBytes, s.m.cache)
	s.scanWorkers = min(runtime.GOMAXPROCS(0), maxScanWorkers)
	s.tokens.Store(tokens)
	s.mux.HandleFunc("/v1/partitions", s.endpoint("/v1/partitions", partitionsParams, s.partitions))
	s.mux.HandleFunc("/v1/logs", s.endpoint("/v1/logs", logsParams, s.logs))
	s.mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint; see /v1/partitions and /v1/logs"})
	})
	return s, nil
}

// ReloadTokens replaces the tokens with those of the file at path; on error
// the tokens in force stay (main calls it on SIGHUP).
func (s *Server) ReloadTokens(path string) error {
	t, err := auth.Load(path)
	if err != nil {
		s.log.Error("tokens reload refused; the previous tokens stay in force", "error", err)
		return err
	}
	s.tokens.Store(t)
	s.log.Info("tokens reloaded", "file", path, "tokens", t.Len())
	return nil
}

// Handler is the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Ready reports whether the archive root answers.
func (s *Server) Ready(ctx context.Context) error {
	if _, err := s.fs.Stat(ctx, "."); err != nil {
		return fmt.Errorf("archive %s: %w", s.fs, err)
	}
	return nil
}

// Run serves the API on cfg.Listen until ctx ends, then lets the requests in
// flight finish (at most Deadline plus 5s).
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("logpeek: listen %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: maxHeaderBytes}
	s.log.Info("serving", "addr", ln.Addr().String(), "archive", s.fs.String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("logpeek: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Deadline+5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("logpeek: shutdown: %w", err)
	}
	return nil
}

// maxHeaderBytes bounds the request line and headers (net/http answers 431
// above it); every parameter is bounded well below it.
const maxHeaderBytes = 64 << 10

// overloadRetryAfter is the Retry-After, in seconds, of a 503 overloaded.
const overloadRetryAfter = 2

// outcome is what one request did, for its log line and metrics.
type outcome struct {
	who, role string
	params    string
	status    int
	code      string
	records   int
	scanned   int64 // compressed archive bytes read
	cacheHits int   // hours served from the page cache
	stopped   string
}

// endpoint authenticates the request, parses its query strictly (allowed
// names only), runs fn, and logs who asked for what.
func (s *Server) endpoint(name string, allowed []string, fn func(http.ResponseWriter, *http.Request, url.Values, auth.Principal, *outcome)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.m.inflight.Inc()
		o := &outcome{who: "anonymous", status: http.StatusOK, code: "ok", params: loggedRaw(r.URL.RawQuery)}
		defer func() {
			s.m.inflight.Dec()
			s.m.requests.WithLabelValues(name, o.code).Inc()
			s.m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
			s.m.scanned.Add(float64(o.scanned))
			s.m.records.Add(float64(o.records))
			level := slog.LevelInfo
			if o.status >= 500 {
				level = slog.LevelWarn
			}
			s.log.Log(r.Context(), level, "query", "who", o.who, "role", o.role, "endpoint", name,
				"params", o.params, "remote", r.RemoteAddr, "status", o.status, "code", o.code,
				"records", o.records, "scanned_bytes", o.scanned, "page_cache_hits", o.cacheHits, "stopped", o.stopped,
				"duration_ms", time.Since(start).Milliseconds())
		}()
		fail := func(e *apiError) {
			o.status, o.code = e.Status, e.Code
			writeError(w, e)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			fail(&apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: "use GET"})
			return
		}
		token, ok := auth.Bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-logpeek"`)
			fail(&apiError{Status: http.StatusUnauthorized, Code: CodeMissingToken, Message: "send Authorization: Bearer <token>"})
			return
		}
		p, ok := s.tokens.Load().Lookup(token)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-logpeek", error="invalid_token"`)
			fail(&apiError{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Message: "unknown token"})
			return
		}
		o.who, o.role = p.Name, p.Role
		v, aerr := parseQuery(r.URL.RawQuery, allowed)
		if aerr != nil {
			fail(aerr)
			return
		}
		o.params = loggedParams(v)
		fn(w, r, v, p, o)
	}
}

// admit takes one of the MaxConcurrent scan slots, or answers 503
// overloaded. The caller calls release when its archive work is done.
func (s *Server) admit(w http.ResponseWriter, o *outcome) (release func(), ok bool) {
	select {
	case s.scans <- struct{}{}:
		return func() { <-s.scans }, true
	default:
		w.Header().Set("Retry-After", strconv.Itoa(overloadRetryAfter))
		o.status, o.code = http.StatusServiceUnavailable, CodeOverloaded
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: CodeOverloaded,
			Message: fmt.Sprintf("%d requests are reading the archive, this server's limit; retry after %ds", cap(s.scans), overloadRetryAfter)})
		return nil, false
	}
}

// loggedParams is a parsed query without the (long, opaque) cursor.
func loggedParams(v url.Values) string {
	if v.Has("cursor") {
		v = maps.Clone(v)
		v.Set("cursor", "…")
	}
	return v.Encode()
}

// loggedRaw is a query string that was not parsed (yet), cut to 512 bytes.
func loggedRaw(raw string) string {
	if len(raw) > 512 {
		return raw[:512] + "…"
	}
	return raw
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]*apiError{"error": e})
}

// authorize refuses a tenant the principal may not read. The answer is the
// same whether or not the tenant exists.
func authorize(p auth.Principal, tenant string) *apiError {
	if p.CanRead(tenant) {
		return nil
	}
	return &apiError{Status: http.StatusForbidden, Code: CodeTenantForbidden, Param: "tenant",
		Message: fmt.Sprintf("this token may not read tenant %q", tenant)}
}

// archiveError turns an archive failure into an answer.
func archiveError(ctx context.Context, err error) *apiError {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &apiError{Status: http.StatusGatewayTimeout, Code: CodeDeadlineExceeded,
			Message: "the request deadline passed before any result; narrow the time range"}
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: CodeArchiveUnavailable, Message: "the archive did not answer: " + err.Error()}
}

// partitionInfo is one hour of GET /v1/partitions.
type partitionInfo struct {
	Start time.Time `json:"start"`
	DT    string    `json:"dt"`
	Hour  string    `json:"hour"`
	Files int       `json:"files"`
	Bytes int64     `json:"bytes"`
}

func (s *Server) partitions(w http.ResponseWriter, r *http.Request, v url.Values, p auth.Principal, o *outcome) {
	sp, aerr := parseSpan(v, s.cfg.MaxPartitionsSpan)
	if aerr == nil {
		aerr = authorize(p, sp.tenant)
	}
	if aerr != nil {
		o.status, o.code = aerr.Status, aerr.Code
		writeError(w, aerr)
		return
	}
	release, ok := s.admit(w, o)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Deadline)
	defer cancel()
	fail := func(err error) {
		aerr := archiveError(ctx, err)
		o.status, o.code = aerr.Status, aerr.Code
		writeError(w, aerr)
	}
	hours, err := archive.ListHours(ctx, s.fs, sp.tenant, sp.from, sp.to)
	if err != nil {
		fail(err)
		return
	}
	out := make([]partitionInfo, 0, len(hours))
	for _, h := range hours {
		parts, _, err := archive.ListHour(ctx, s.fs, h)
		if err != nil {
			fail(err)
			return
		}
		if len(parts) == 0 {
			continue
		}
		pi := partitionInfo{Start: h.Start, DT: h.Start.Format("2006-01-02"), Hour: h.Start.Format("15"), Files: len(parts)}
		for _, f := range parts {
			pi.Bytes += f.Size
		}
		out = append(out, pi)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"tenant": sp.tenant, "from": sp.from, "to": sp.to, "partitions": out})
}

// meta is the last line of a /v1/logs answer.
type meta struct {
	Records      int       `json:"records"`
	Bytes        int64     `json:"bytes"` // record bytes sent, newlines included
	ScannedBytes int64     `json:"scanned_bytes"`
	Complete     bool      `json:"complete"`
	NextCursor   string    `json:"next_cursor,omitempty"`
	Stopped      string    `json:"stopped,omitempty"` // limit, size_limit, scan_limit, deadline, error
	Error        *apiError `json:"error,omitempty"`
}

// match is one record found by a scan.
type match struct {
	k    key
	line []byte
}

func (m match) size() int64 { return int64(len(m.line)) + 1 }

func (s *Server) logs(w http.ResponseWriter, r *http.Request, v url.Values, p auth.Principal, o *outcome) {
	q, aerr := parseLogs(v, s.cfg, s.now())
	if aerr == nil {
		aerr = authorize(p, q.tenant)
	}
	if aerr != nil {
		o.status, o.code = aerr.Status, aerr.Code
		writeError(w, aerr)
		return
	}
	release, ok := s.admit(w, o)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Deadline)
	defer cancel()

	started := false
	bw := bufio.NewWriterSize(w, 64<<10)
	flusher, _ := w.(http.Flusher)
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
		}
	}
	flush := func() {
		_ = bw.Flush()
		if flusher != nil {
			flusher.Flush()
		}
	}
	var m meta
	progress := false // an hour was finished, or records returned: a cursor moves forward
	// finish ends the answer. A stop that made no progress is an error
	// answer (repeating the request could not get further); otherwise the
	// meta line says where to resume.
	finish := func(stopped string, next key, aerr *apiError) {
		if aerr != nil && !progress && m.Records == 0 {
			o.status, o.code = aerr.Status, aerr.Code
			writeError(w, aerr)
			return
		}
		start()
		m.Stopped = stopped
		m.Complete = stopped == ""
		if stopped == "error" {
			m.Error = aerr
			o.code = aerr.Code
		}
		if !m.Complete {
			m.NextCursor = encodeCursor(q, next, s.now())
		}
		o.stopped = stopped
		b, _ := json.Marshal(map[string]meta{"_meta": m})
		_, _ = bw.Write(append(b, '\n'))
		flush()
	}
	defer func() { o.records = m.Records }()
	qid := q.cacheID()

	hours, err := archive.ListHours(ctx, s.fs, q.tenant, q.from, q.to)
	if err != nil {
		finish("error", key{}, archiveError(ctx, err))
		return
	}
	for _, h := range hours {
		hk := startOfHour(h.Start)
		after := hk
		if q.cursor != nil {
			if h.Start.Unix() < q.cursor.Key.Hour {
				continue
			}
			if h.Start.Unix() == q.cursor.Key.Hour {
				after = q.cursor.Key
			}
		}
		resume := hk // everything before this hour is done
		if after.compare(hk) > 0 {
			resume = after
		}
		if r.Context().Err() != nil {
			return // the client is gone
		}
		parts, _, err := archive.ListHour(ctx, s.fs, h)
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			finish(stopReason(ctx), resume, archiveError(ctx, err))
			return
		}
		var size int64
		for _, f := range parts {
			size += f.Size
		}
		if m.ScannedBytes+size > s.cfg.MaxScanBytes {
			finish("scan_limit", resume, &apiError{Status: http.StatusUnprocessableEntity, Code: CodeScanLimitExceeded,
				Message: fmt.Sprintf("hour %s alone holds %d compressed bytes, over this server's scan limit of %d per request", h.Start.Format(time.RFC3339), size, s.cfg.MaxScanBytes)})
			return
		}
		matches, cut, read, hit, err := s.pageOf(ctx, q, qid, h, parts, after, q.limit-m.Records, s.cfg.MaxResponseBytes-m.Bytes, m.Records == 0)
		o.scanned += read
		if hit {
			m.ScannedBytes += size // what the page that read the hour for the cache scanned
			o.cacheHits++
		} else {
			m.ScannedBytes += read
		}
		if err != nil {
			if r.Context().Err() != nil {
				s.log.Debug("client went away; scan cancelled", "tenant", q.tenant)
				o.status, o.code = 499, "client_closed"
				return
			}
			finish(stopReason(ctx), resume, archiveError(ctx, err))
			return
		}
		for _, mt := range matches {
			start()
			_, _ = bw.Write(mt.line)
			_ = bw.WriteByte('\n')
			m.Records++
			m.Bytes += mt.size()
		}
		switch {
		case m.Records >= q.limit:
			finish("limit", matches[len(matches)-1].k, nil)
			return
		case cut:
			last := resume
			if len(matches) > 0 {
				last = matches[len(matches)-1].k
			}
			finish("size_limit", last, nil)
			return
		}
		progress = true
		if started {
			flush()
		}
	}
	finish("", key{}, nil)
}

func stopReason(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "deadline"
	}
	return "error"
}

// selection keeps the first records, in key order, of those offered: at
// most need records of at most budget bytes in all (one record over the
// budget when first: an answer always makes progress). It never holds more,
// whatever the order of the offers: a max-heap by key, and a bound below
// which every later offer must fall. The records are kept as they come
// until the first one must be dropped, and made a heap then (an hour that
// fits costs no heap work).
type selection struct {
	heap   []match // max-heap by key once heaped
	heaped bool
	bytes  int64
	need   int
	budget int64
	first  bool // the answer has no record yet: keep one whatever its size
	bound  *key // smallest key dropped; nothing at or after it may enter
}

func newSelection(need int, budget int64, first bool) *selection {
	return &selection{need: need, budget: budget, first: first}
}

// wants reports whether a record at k could enter (before it is copied).
func (s *selection) wants(k key) bool { return s.bound == nil || k.compare(*s.bound) < 0 }

// offer adds a record at k whose line is line (copied if it enters).
func (s *selection) offer(k key, line []byte) {
	if s.wants(k) {
		s.add(match{k: k, line: bytes.Clone(line)})
	}
}

// add adds m, whose line the selection may keep.
func (s *selection) add(m match) {
	if !s.wants(m.k) {
		return
	}
	s.push(m)
	for {
		overCount := len(s.heap) > s.need
		// An empty heap is within any budget: the budget left to a page
		// is negative after a first record over it.
		overBytes := s.bytes > s.budget && len(s.heap) > 0 && !(s.first && len(s.heap) == 1)
		if !overCount && !overBytes {
			return
		}
		if !s.heaped {
			for i := len(s.heap)/2 - 1; i >= 0; i-- {
				s.down(i)
			}
			s.heaped = true
		}
		dropped := s.pop()
		s.bound = &dropped.k
	}
}

func (s *selection) push(m match) {
	s.heap = append(s.heap, m)
	s.bytes += m.size()
	if !s.heaped {
		return
	}
	for i := len(s.heap) - 1; i > 0; {
		parent := (i - 1) / 2
		if s.heap[parent].k.compare(s.heap[i].k) >= 0 {
			break
		}
		s.heap[parent], s.heap[i] = s.heap[i], s.heap[parent]
		i = parent
	}
}

func (s *selection) pop() match {
	top := s.heap[0]
	n := len(s.heap) - 1
	s.heap[0] = s.heap[n]
	s.heap[n] = match{}
	s.heap = s.heap[:n]
	s.bytes -= top.size()
	s.down(0)
	return top
}

// down moves the record at i down the heap to its place.
func (s *selection) down(i int) {
	n := len(s.heap)
	for {
		l, largest := 2*i+1, i
		if l < n && s.heap[l].k.compare(s.heap[largest].k) > 0 {
			largest = l
		}
		if r := l + 1; r < n && s.heap[r].k.compare(s.heap[largest].k) > 0 {
			largest = r
		}
		if largest == i {
			return
		}
		s.heap[i], s.heap[largest] = s.heap[largest], s.heap[i]
		i = largest
	}
}

// truncated reports whether records were left out for the byte budget
// (rather than for need, which stops the answer by limit).
func (s *selection) truncated() bool { return s.bound != nil && len(s.heap) < s.need }

// sorted returns the records kept, in key order (sorted in place: no
// longer a heap, until the next drop makes it one again).
func (s *selection) sorted() []match {
	slices.SortFunc(s.heap, func(a, b match) int { return a.k.compare(b.k) })
	s.heaped = false
	return s.heap
}

// takePage applies a page's bounds to recs, the records after its position
// in key order: the page is recs[:n], the longest prefix of at most need
// records and budget bytes (its first record whatever its size when first),
// and cut reports that a record was left out for the budget (rather than
// for need, which stops the answer by limit). complete says recs holds
// every record after the position; if it does not and the page would take
// all of recs, the page cannot be decided from recs (decided is false).
func takePage(recs []match, need int, budget int64, first, complete bool) (n int, cut, decided bool) {
	var used int64
	for ; n < len(recs) && n < need; n++ {
		size := recs[n].size()
		if used+size > budget && !(first && n == 0) {
			return n, true, true
		}
		used += size
	}
	if n == need || complete {
		return n, false, true
	}
	return n, false, false
}

// pageOf returns the records of hour h (listed as parts) after `after`
// that the page takes (at most need records of budget bytes, one over it
// if first: see selection) and whether records were left out for the
// budget (cut). It reads the hour's part files (read bytes), or, with the
// page cache, serves the records from an entry a previous page of the
// query left (hit: nothing read). The answer is the same either way.
func (s *Server) pageOf(ctx context.Context, q *logsQuery, qid [32]byte, h archive.Hour, parts []archive.PartFile,
	after key, need int, budget int64, first bool) (page []match, cut bool, read int64, hit bool, err error) {
	if s.cache == nil {
		sel := newSelection(need, budget, first)
		read, err = s.scanHour(ctx, q, parts, after, sel)
		return sel.sorted(), sel.truncated(), read, false, err
	}
	ck := cacheKey{query: qid, hour: h.Start.Unix()}
	files := partIDs(parts)
	e, ok := s.cache.get(ck, q.tenant, files, after, s.now())
	if ok {
		recs := e.from(after)
		if n, cut, decided := takePage(recs, need, budget, first, e.hi == nil); decided {
			s.cache.m.hits.Inc()
			s.keepRest(e, ck, q.tenant, files, after, recs, n, n == need || cut, e.hi)
			return recs[:n], cut, 0, true, nil
		}
		// The page would go past the entry's end: read the hour again
		// (and fill a new entry from the position).
	}
	s.cache.m.misses.Inc()
	// Keep the records after the page too, up to the entry cap (and at
	// least the page's own: budget). The selection holds every record
	// before its bound, so the page is the prefix takePage finds. If the
	// page would take all of them (undecided), the record at the bound did
	// not fit the selection's cap, which is at least budget: the page is
	// cut there.
	sel := newSelection(math.MaxInt, max(s.cache.entryCap, budget), first)
	read, err = s.scanHour(ctx, q, parts, after, sel)
	if err != nil {
		return nil, false, read, false, err
	}
	recs := sel.sorted()
	n, cut, decided := takePage(recs, need, budget, first, sel.bound == nil)
	cut = cut || !decided
	s.keepRest(e, ck, q.tenant, files, after, recs, n, n == need || cut, sel.bound)
	return recs[:n], cut, read, false, nil
}

// keepRest puts in the page cache what a page leaves of an hour it stops
// in (by limit or size_limit). recs holds every record of the hour after
// `after` up to hi (nil: the hour's end) and the page took its first n;
// the entry keeps the others, cut to the entry cap (its end then the first
// record left out). old, the entry of the hour the page looked up (nil:
// none), is dropped when nothing is kept.
func (s *Server) keepRest(old *cacheEntry, ck cacheKey, tenant string, files []partID, after key, recs []match, n int, stops bool, hi *key) {
	rest := recs[n:]
	cost, j := entryCost(files), 0
	for ; j < len(rest); j++ {
		c := rest[j].cost()
		if cost+c > s.cache.entryCap {
			k := rest[j].k
			hi = &k
			break
		}
		cost += c
	}
	// An entry that ends where it starts serves no page: it is kept only
	// if complete (the hour holds nothing more: the next page skips it).
	if !stops || (j == 0 && hi != nil) {
		if old != nil {
			s.cache.drop(old)
		}
		return
	}
	lo := after
	if n > 0 {
		lo = recs[n-1].k
	}
	s.cache.put(&cacheEntry{key: ck, tenant: tenant, files: files, lo: lo, hi: hi,
		recs: slices.Clone(rest[:j]), size: cost}, s.now())
}

// offerer takes the records a scan finds: a selection, or a batch for one.
type offerer interface {
	// wants reports whether a record at k could enter (before it is copied).
	wants(k key) bool
	// offer adds a record at k whose line is line (copied if kept).
	offer(k key, line []byte)
}

// scanHour reads the part files of one hour into sel: the records after
// `after` that match q. It returns the bytes it read: the sizes of the
// files up to the first that failed (in parts' order), and that one's
// error. Up to s.scanWorkers files are read at once, each feeding sel in
// batches; sel keeps the same records whatever the order of its offers,
// and the bytes and the error are those of reading the files in order.
func (s *Server) scanHour(ctx context.Context, q *logsQuery, parts []archive.PartFile, after key, sel *selection) (int64, error) {
	var (
		mu     sync.Mutex // guards sel
		next   atomic.Int64
		failed atomic.Int64 // the first file (index) that failed; len(parts): none
		wg     sync.WaitGroup
		read   = make([]int64, len(parts))
		errs   = make([]error, len(parts))
	)
	failed.Store(int64(len(parts)))
	for range min(s.scanWorkers, len(parts)) {
		wg.Go(func() {
			b := &batch{sel: sel, mu: &mu}
			defer b.flush()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(parts)) || i > failed.Load() {
					return
				}
				read[i], errs[i] = s.scanFile(ctx, q, parts[i], after, b)
				for f := failed.Load(); errs[i] != nil && i < f; f = failed.Load() {
					if failed.CompareAndSwap(f, i) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	var scanned int64
	for i := range parts {
		scanned += read[i]
		if errs[i] != nil {
			return scanned, errs[i]
		}
	}
	return scanned, nil
}

// batch gathers one scan worker's records for a shared selection and
// offers them under its lock, batchBytes at a time.
type batch struct {
	sel   *selection
	mu    *sync.Mutex
	bound *key // the selection's bound at the last flush: a later one is lower
	recs  []match
	bytes int
}

const (
	batchBytes   = 64 << 10
	batchRecords = 512
)

// wants lets through every record the selection wanted at the last flush
// (a superset of what it wants now; offer checks again).
func (b *batch) wants(k key) bool { return b.bound == nil || k.compare(*b.bound) < 0 }

func (b *batch) offer(k key, line []byte) {
	b.recs = append(b.recs, match{k: k, line: bytes.Clone(line)})
	if b.bytes += len(line); b.bytes >= batchBytes || len(b.recs) >= batchRecords {
		b.flush()
	}
}

func (b *batch) flush() {
	b.mu.Lock()
	for _, m := range b.recs {
		b.sel.add(m)
	}
	b.bound = b.sel.bound
	b.mu.Unlock()
	clear(b.recs)
	b.recs, b.bytes = b.recs[:0], 0
}

// scanFile streams one part file through the filters.
func (s *Server) scanFile(ctx context.Context, q *logsQuery, f archive.PartFile, after key, sel offerer) (int64, error) {
	rc, err := s.fs.Open(ctx, f.Path())
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return f.Size, fmt.Errorf("logpeek: %s: %w", f.Path(), err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	name := f.Part.Name()
	hour := f.Hour.Start.Unix()
	for line := 0; sc.Scan(); line++ {
		if line%1024 == 0 && ctx.Err() != nil {
			return f.Size, ctx.Err()
		}
		raw := sc.Bytes()
		if len(q.q) > 0 && !bytes.Contains(raw, q.q) {
			continue
		}
		// The archive holds canonical records: their head (time, tenant)
		// is read without decoding, and a record outside the range, at or
		// before the cursor, or that the page would not keep is skipped
		// before any decode; one that needs no other filter is never
		// decoded. Anything else takes the full decoder.
		if ts, tenant, ok := record.Head(raw); ok {
			if tenant != q.tenant || ts.Before(q.from) || !ts.Before(q.to) {
				continue
			}
			k := key{Hour: hour, TS: ts.UnixNano(), File: name, Line: line}
			if k.compare(after) <= 0 || !sel.wants(k) {
				continue
			}
			if !q.fieldFilters() {
				sel.offer(k, raw)
				continue
			}
		}
		rec, _, err := record.Decode(raw)
		if err != nil {
			return f.Size, fmt.Errorf("logpeek: %s line %d: %w", f.Path(), line+1, err)
		}
		if !q.match(&rec, raw) {
			continue
		}
		k := key{Hour: hour, TS: rec.Timestamp.UnixNano(), File: name, Line: line}
		if k.compare(after) <= 0 {
			continue
		}
		sel.offer(k, raw)
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return f.Size, ctx.Err()
		}
		return f.Size, fmt.Errorf("logpeek: read %s: %w", f.Path(), err)
	}
	return f.Size, nil
}

// maxScanWorkers bounds the part files one request reads at once (each
// holds a gzip reader, a line buffer and a batch: about 2 MiB at worst).
const maxScanWorkers = 4

// maxLine is the longest archived line logpeek reads (a record is far
// smaller: internal/record bounds every field).
const maxLine = 1 << 20
