package logpeek

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/record"
)

// Server is the log-peek API.
type Server struct {
	cfg    Config
	fs     archive.FS
	tokens atomic.Pointer[Tokens]
	log    *slog.Logger
	m      *metrics
	mux    *http.ServeMux
}

// New builds the API over the archive fsys.
func New(cfg Config, fsys archive.FS, tokens *Tokens, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("logpeek: config: %w", err)
	}
	if fsys == nil || tokens == nil {
		return nil, errors.New("logpeek: an archive and a tokens file are required")
	}
	s := &Server{cfg: cfg, fs: fsys, log: log.With("component", "logpeek"), m: newMetrics(reg), mux: http.NewServeMux()}
	s.tokens.Store(tokens)
	s.mux.HandleFunc("/v1/partitions", s.endpoint("/v1/partitions", s.partitions))
	s.mux.HandleFunc("/v1/logs", s.endpoint("/v1/logs", s.logs))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint; see /v1/partitions and /v1/logs"})
	})
	return s, nil
}

// ReloadTokens replaces the tokens with those of the file at path; on error
// the tokens in force stay (main calls it on SIGHUP).
func (s *Server) ReloadTokens(path string) error {
	t, err := LoadTokens(path)
	if err != nil {
		s.log.Error("tokens reload refused; the previous tokens stay in force", "error", err)
		return err
	}
	s.tokens.Store(t)
	s.log.Info("tokens reloaded", "file", path, "tokens", len(t.byDigest))
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
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
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

// outcome is what one request did, for its log line and metrics.
type outcome struct {
	who, role string
	status    int
	code      string
	records   int
	scanned   int64
	stopped   string
}

// endpoint authenticates the request, runs fn, and logs who asked for what.
func (s *Server) endpoint(name string, fn func(http.ResponseWriter, *http.Request, Principal, *outcome)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.m.inflight.Inc()
		o := &outcome{who: "anonymous", status: http.StatusOK, code: "ok"}
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
				"params", loggedParams(r), "remote", r.RemoteAddr, "status", o.status, "code", o.code,
				"records", o.records, "scanned_bytes", o.scanned, "stopped", o.stopped,
				"duration_ms", time.Since(start).Milliseconds())
		}()
		fail := func(e *apiError) {
			o.status, o.code = e.Status, e.Code
			writeError(w, e)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			fail(&apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: "use GET"})
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-logpeek"`)
			fail(&apiError{Status: http.StatusUnauthorized, Code: CodeMissingToken, Message: "send Authorization: Bearer <token>"})
			return
		}
		p, ok := s.tokens.Load().Lookup(strings.TrimSpace(token))
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-logpeek", error="invalid_token"`)
			fail(&apiError{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Message: "unknown token"})
			return
		}
		o.who, o.role = p.Name, p.Role
		fn(w, r, p, o)
	}
}

// loggedParams is the request's query without the (long, opaque) cursor.
func loggedParams(r *http.Request) string {
	v := r.URL.Query()
	if v.Has("cursor") {
		v.Set("cursor", "…")
	}
	return v.Encode()
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]*apiError{"error": e})
}

// authorize refuses a tenant the principal may not read. The answer is the
// same whether or not the tenant exists.
func authorize(p Principal, tenant string) *apiError {
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

func (s *Server) partitions(w http.ResponseWriter, r *http.Request, p Principal, o *outcome) {
	sp, aerr := parseSpan(r.URL.Query(), partitionsParams, s.cfg.MaxPartitionsSpan)
	if aerr == nil {
		aerr = authorize(p, sp.tenant)
	}
	if aerr != nil {
		o.status, o.code = aerr.Status, aerr.Code
		writeError(w, aerr)
		return
	}
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
	ScannedBytes int64     `json:"scanned_bytes"`
	Complete     bool      `json:"complete"`
	NextCursor   string    `json:"next_cursor,omitempty"`
	Stopped      string    `json:"stopped,omitempty"` // limit, scan_limit, deadline, error
	Error        *apiError `json:"error,omitempty"`
}

// match is one record found by a scan.
type match struct {
	k    key
	line []byte
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request, p Principal, o *outcome) {
	q, aerr := parseLogs(r.URL.Query(), s.cfg)
	if aerr == nil {
		aerr = authorize(p, q.tenant)
	}
	if aerr != nil {
		o.status, o.code = aerr.Status, aerr.Code
		writeError(w, aerr)
		return
	}
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
			m.NextCursor = encodeCursor(q, next)
		}
		o.stopped = stopped
		b, _ := json.Marshal(map[string]meta{"_meta": m})
		_, _ = bw.Write(append(b, '\n'))
		flush()
	}
	defer func() { o.records, o.scanned = m.Records, m.ScannedBytes }()

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
		need := q.limit - m.Records
		matches, scanned, err := s.scanHour(ctx, q, parts, after, need)
		m.ScannedBytes += scanned
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
		}
		if m.Records >= q.limit {
			finish("limit", matches[len(matches)-1].k, nil)
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

// scanHour reads the part files of one hour and returns, in key order, the
// first need records after `after` that match q, with the bytes it read.
func (s *Server) scanHour(ctx context.Context, q *logsQuery, parts []archive.PartFile, after key, need int) ([]match, int64, error) {
	var (
		out     []match
		scanned int64
	)
	trim := func() {
		slices.SortFunc(out, func(a, b match) int { return a.k.compare(b.k) })
		if len(out) > need {
			out = out[:need]
		}
	}
	for _, f := range parts {
		n, err := s.scanFile(ctx, q, f, after, func(mt match) {
			out = append(out, mt)
			if len(out) >= 2*need+1024 {
				trim()
			}
		})
		scanned += n
		if err != nil {
			return nil, scanned, err
		}
	}
	trim()
	return out, scanned, nil
}

// scanFile streams one part file through the filters.
func (s *Server) scanFile(ctx context.Context, q *logsQuery, f archive.PartFile, after key, emit func(match)) (int64, error) {
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
	sc.Buffer(make([]byte, 64<<10), 1<<20)
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
		var rec record.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return f.Size, fmt.Errorf("logpeek: %s line %d: %w", f.Path(), line+1, err)
		}
		if !q.match(&rec, raw) {
			continue
		}
		k := key{Hour: hour, TS: rec.Timestamp.UnixNano(), File: name, Line: line}
		if k.compare(after) <= 0 {
			continue
		}
		emit(match{k: k, line: bytes.Clone(raw)})
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return f.Size, ctx.Err()
		}
		return f.Size, fmt.Errorf("logpeek: read %s: %w", f.Path(), err)
	}
	return f.Size, nil
}
