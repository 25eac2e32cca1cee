package query

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/auth"
	"github.com/hourglass-io/hourglass/internal/catalog/archivequery"
)

// Error codes of the API besides archivequery's (error.code in every 4xx/5xx body).
const (
	CodeMissingToken        = "missing_token"
	CodeInvalidToken        = "invalid_token"
	CodeTenantForbidden     = "tenant_forbidden"
	CodeTenantRequired      = "tenant_required"
	CodeNotFound            = "not_found"
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeBadParam            = "bad_param"
	CodeBadCursor           = "bad_cursor"
	CodeTooManyJobs         = "too_many_jobs"
	CodeIdempotencyConflict = "idempotency_conflict"
	CodeJobNotSucceeded     = "job_not_succeeded"
	CodeResultsExpired      = "results_expired"
	CodeUnavailable         = "unavailable"
	CodeInternal            = "internal"
)

// apiError is the body of every error answer: {"error": {...}}.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
}

// Server is the query service's HTTP API over a Manager.
type Server struct {
	cfg     Config
	mgr     *Manager
	store   *Store
	tokens  atomic.Pointer[auth.Tokens]
	log     *slog.Logger
	m       *metrics
	mux     *http.ServeMux
	waiting *waitMap
	closing chan struct{}
	once    sync.Once
}

// New builds the service: the API, the job manager over engine, the store
// in the archive's file system, and events to pub (nil: SSE only).
func New(cfg Config, engine Engine, store *Store, pub Publisher, tokens *auth.Tokens, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("query: config: %w", err)
	}
	if engine == nil || store == nil || tokens == nil {
		return nil, errors.New("query: an engine, a store and tokens are required")
	}
	log = log.With("component", "query")
	m := newMetrics(reg)
	s := &Server{cfg: cfg, mgr: NewManager(cfg, engine, store, pub, log, m), store: store, log: log, m: m,
		mux: http.NewServeMux(), waiting: newWaitMap(), closing: make(chan struct{})}
	s.tokens.Store(tokens)
	s.mux.HandleFunc("POST /v1/query", s.endpoint("query", s.syncQuery))
	s.mux.HandleFunc("POST /v1/jobs", s.endpoint("submit", s.submit))
	s.mux.HandleFunc("GET /v1/jobs", s.endpoint("list", s.list))
	s.mux.HandleFunc("GET /v1/jobs/{id}", s.endpoint("status", s.jobStatus))
	s.mux.HandleFunc("GET /v1/jobs/{id}/results", s.endpoint("results", s.results))
	s.mux.HandleFunc("POST /v1/jobs/{id}/cancel", s.endpoint("cancel", s.cancel))
	s.mux.HandleFunc("GET /v1/jobs/{id}/events", s.endpoint("events", s.events))
	s.mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI)
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint; see /openapi.json"})
	})
	return s, nil
}

// Start loads the job records and starts the scheduler (before Run serves).
func (s *Server) Start(ctx context.Context) error {
	if err := s.mgr.Start(ctx); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-s.closing:
				return
			case now := <-t.C:
				if n := s.waiting.sweep(now, 5*time.Second); n > 0 {
					s.log.Warn("synchronous waits past their deadline dropped", "count", n)
				}
			}
		}
	}()
	return nil
}

// Handler is the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// ReloadTokens replaces the tokens with those of the file at path; on error
// the tokens in force stay.
func (s *Server) ReloadTokens(path string) error {
	t, err := auth.Load(path)
	if err != nil {
		return err
	}
	s.tokens.Store(t)
	return nil
}

// Ready reports whether the store answers.
func (s *Server) Ready(ctx context.Context) error { return s.store.Ready(ctx) }

// Run serves the API on cfg.Listen until ctx ends, then drains: no new
// jobs, event streams closed, waiting requests answered, running jobs
// given DrainTimeout.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("query: listen %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	s.log.Info("serving", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("query: serve: %w", err)
	case <-ctx.Done():
	}
	return errors.Join(serveErr, s.Shutdown(context.WithoutCancel(ctx), srv))
}

// Shutdown drains the server (srv may be nil when the handler is served
// elsewhere, as in tests).
func (s *Server) Shutdown(ctx context.Context, srv *http.Server) error {
	s.once.Do(func() { close(s.closing) })
	var errs []error
	if srv != nil {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.SyncMax+5*time.Second)
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("query: shutdown: %w", err))
		}
		cancel()
	}
	mctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout+10*time.Second)
	defer cancel()
	errs = append(errs, s.mgr.Shutdown(mctx))
	return errors.Join(errs...)
}

// outcome is what one request did, for its log line and metrics.
type outcome struct {
	who, role, job string
	status         int
	code           string
}

func (s *Server) endpoint(name string, fn func(http.ResponseWriter, *http.Request, auth.Principal, *outcome)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		o := &outcome{who: "anonymous", status: http.StatusOK, code: "ok"}
		defer func() {
			s.m.requests.WithLabelValues(name, o.code).Inc()
			s.m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
			level := slog.LevelInfo
			if o.status >= 500 {
				level = slog.LevelWarn
			}
			s.log.Log(r.Context(), level, "request", "who", o.who, "role", o.role, "endpoint", name, "job", o.job,
				"remote", r.RemoteAddr, "status", o.status, "code", o.code, "duration_ms", time.Since(start).Milliseconds())
		}()
		token, ok := auth.Bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-query"`)
			s.fail(w, o, &apiError{Status: http.StatusUnauthorized, Code: CodeMissingToken, Message: "send Authorization: Bearer <token>"})
			return
		}
		p, ok := s.tokens.Load().Lookup(token)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass-query", error="invalid_token"`)
			s.fail(w, o, &apiError{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Message: "unknown token"})
			return
		}
		o.who, o.role = p.Name, p.Role
		fn(w, r, p, o)
	}
}

func (s *Server) fail(w http.ResponseWriter, o *outcome, e *apiError) {
	o.status, o.code = e.Status, e.Code
	writeError(w, e)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 255

// prepare authenticates nothing (endpoint did): it reads, decodes,
// authorizes and compiles a submitted query.
func (s *Server) prepare(r *http.Request, p auth.Principal, sync bool) (Submission, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.Limits.MaxBodyBytes)+1))
	if err != nil {
		return Submission{}, &apiError{Status: http.StatusBadRequest, Code: archivequery.CodeMalformed, Message: "reading the body: " + err.Error()}
	}
	q, err := archivequery.Decode(body, s.cfg.Limits)
	if err != nil {
		return Submission{}, queryError(err)
	}
	tenant := q.Tenant
	switch {
	case tenant != "":
		if !p.CanRead(tenant) {
			return Submission{}, &apiError{Status: http.StatusForbidden, Code: CodeTenantForbidden, Param: "tenant",
				Message: fmt.Sprintf("this token may not read tenant %.64q", tenant)}
		}
	case len(p.Tenants) == 1:
		tenant = p.Tenants[0]
	case !(p.IsAdmin() && q.SQL != ""):
		return Submission{}, &apiError{Status: http.StatusBadRequest, Code: CodeTenantRequired, Param: "tenant",
			Message: "this token reads several tenants: name one in \"tenant\""}
	}
	plan, err := archivequery.Compile(q, archivequery.Caller{Tenant: tenant, Admin: p.IsAdmin()}, s.cfg.Limits)
	if err != nil {
		return Submission{}, queryError(err)
	}
	if sync && plan.Limit > s.cfg.InlineRows {
		return Submission{}, &apiError{Status: http.StatusBadRequest, Code: archivequery.CodeTooLarge, Param: "limit",
			Message: fmt.Sprintf("limit %d: a synchronous answer carries at most %d rows; submit a job (POST /v1/jobs) for more", plan.Limit, s.cfg.InlineRows)}
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey || strings.ContainsFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) {
		return Submission{}, &apiError{Status: http.StatusBadRequest, Code: CodeBadParam, Param: "Idempotency-Key",
			Message: fmt.Sprintf("Idempotency-Key: at most %d printable ASCII characters", maxIdempotencyKey)}
	}
	canon, _ := json.Marshal(q)
	sum := sha256.Sum256(append([]byte(tenant+"\n"), canon...))
	return Submission{Owner: p.Name, Tenant: tenant, Query: q, Plan: plan, IdempotencyKey: key,
		Fingerprint: hex.EncodeToString(sum[:]), Sync: sync}, nil
}

func queryError(err error) *apiError {
	e, ok := archivequery.AsError(err)
	if !ok {
		return &apiError{Status: http.StatusBadRequest, Code: archivequery.CodeMalformed, Message: err.Error()}
	}
	status := http.StatusBadRequest
	if e.Code == archivequery.CodeForbidden {
		status = http.StatusForbidden
	}
	return &apiError{Status: status, Code: e.Code, Param: e.Param, Message: e.Message}
}

// submitError turns a Manager.Submit error into an answer.
func (s *Server) submitError(w http.ResponseWriter, o *outcome, err error) {
	var qe *QuotaError
	switch {
	case errors.As(err, &qe):
		w.Header().Set("Retry-After", strconv.Itoa(int(qe.RetryAfter.Round(time.Second)/time.Second)))
		s.fail(w, o, &apiError{Status: http.StatusTooManyRequests, Code: CodeTooManyJobs, Message: qe.Error()})
	case errors.Is(err, ErrIdempotencyConflict):
		s.fail(w, o, &apiError{Status: http.StatusConflict, Code: CodeIdempotencyConflict, Param: "Idempotency-Key", Message: err.Error()})
	case errors.Is(err, ErrDraining):
		w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter/time.Second)))
		s.fail(w, o, &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: err.Error()})
	default:
		s.fail(w, o, &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the job could not be recorded: " + err.Error()})
	}
}

// jobAnswer is the body of a submit, a status and a 202 of the sync API.
type jobAnswer struct {
	Job Status `json:"job"`
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, p auth.Principal, o *outcome) {
	sub, aerr := s.prepare(r, p, false)
	if aerr != nil {
		s.fail(w, o, aerr)
		return
	}
	st, created, err := s.mgr.Submit(r.Context(), sub)
	if err != nil {
		s.submitError(w, o, err)
		return
	}
	o.job = st.ID
	w.Header().Set("Location", "/v1/jobs/"+st.ID)
	status := http.StatusAccepted
	if !created {
		status = http.StatusOK // the job of this Idempotency-Key
	}
	o.status = status
	writeJSON(w, status, jobAnswer{Job: st})
}

// visible reports whether p may see job j: its owner (still allowed to read
// its tenant) or an admin. Anyone else gets the same 404 as for an unknown id.
func visible(p auth.Principal, j *Job) bool {
	if p.IsAdmin() {
		return true
	}
	return j.Owner == p.Name && j.Tenant != "" && p.CanRead(j.Tenant)
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request, p auth.Principal, o *outcome) (Job, bool) {
	id := r.PathValue("id")
	o.job = id
	if idRE.MatchString(id) {
		if j, ok := s.mgr.Lookup(id); ok && visible(p, &j) {
			return j, true
		}
	}
	s.fail(w, o, &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Param: "id", Message: "no such job"})
	return Job{}, false
}

func (s *Server) jobStatus(w http.ResponseWriter, r *http.Request, p auth.Principal, o *outcome) {
	if j, ok := s.lookup(w, r, p, o); ok {
		writeJSON(w, http.StatusOK, jobAnswer{Job: j.status()})
	}
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, p auth.Principal, o *outcome) {
	j, ok := s.lookup(w, r, p, o)
	if !ok {
		return
	}
	s.mgr.Cancel(j.ID, JobCodeCancelled, "cancelled by "+p.Name)
	j, _ = s.mgr.Lookup(j.ID)
	o.status = http.StatusAccepted
	writeJSON(w, http.StatusAccepted, jobAnswer{Job: j.status()})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, p auth.Principal, o *outcome) {
	v := r.URL.Query()
	limit := s.cfg.MaxListJobs
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > s.cfg.MaxListJobs {
			s.fail(w, o, &apiError{Status: http.StatusBadRequest, Code: CodeBadParam, Param: "limit",
				Message: fmt.Sprintf("limit: an integer in [1, %d]", s.cfg.MaxListJobs)})
			return
		}
		limit = n
	}
	var before time.Time
	if b := v.Get("before"); b != "" {
		t, err := time.Parse(time.RFC3339Nano, b)
		if err != nil {
			s.fail(w, o, &apiError{Status: http.StatusBadRequest, Code: CodeBadParam, Param: "before", Message: "before: an RFC 3339 time"})
			return
		}
		before = t
	}
	// The caller's own jobs only, admins included.
	jobs := s.mgr.List(func(j *Job) bool { return j.Owner == p.Name && (j.Tenant == "" || p.CanRead(j.Tenant)) }, before, limit)
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs})
}

// cursor is the opaque position in a job's results.
type cursor struct {
	Job    string `json:"j"`
	Offset int    `json:"o"` // rows before it
	Part   int    `json:"p"` // where the next row starts: part file
	Byte   int64  `json:"b"` // and byte in it
}

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	if len(s) > 256 {
		return c, errors.New("too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, err
	}
	if c.Offset < 0 || c.Part < 0 || c.Byte < 0 {
		return c, errors.New("negative position")
	}
	return c, nil
}

// resultsMeta is the last line of a results page.
type resultsMeta struct {
	Rows       int    `json:"rows"`
	Offset     int    `json:"offset"`
	Total      int    `json:"total"`
	Complete   bool   `json:"complete"`
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) results(w http.ResponseWriter, r *http.Request, p auth.Principal, o *outcome) {
	j, ok := s.lookup(w, r, p, o)
	if !ok {
		return
	}
	v := r.URL.Query()
	limit := s.cfg.PageRows
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > s.cfg.MaxPageRows {
			s.fail(w, o, &apiError{Status: http.StatusBadRequest, Code: CodeBadParam, Param: "limit",
				Message: fmt.Sprintf("limit: an integer in [1, %d]", s.cfg.MaxPageRows)})
			return
		}
		limit = n
	}
	cur := cursor{Job: j.ID}
	badCursor := &apiError{Status: http.StatusBadRequest, Code: CodeBadCursor, Param: "cursor", Message: "not a cursor of this job's results"}
	if cs := v.Get("cursor"); cs != "" {
		c, err := decodeCursor(cs)
		if err != nil || c.Job != j.ID || c.Offset > j.Rows {
			s.fail(w, o, badCursor)
			return
		}
		cur = c
	}
	if j.State == StateSucceeded {
		// A synchronous job's rows may still be on their way to the store.
		sj, err := s.mgr.ResultsStored(r.Context(), j.ID)
		if err != nil {
			o.status, o.code = 499, "client_gone"
			return
		}
		j.ResultsGone = sj.ResultsGone
	}
	switch {
	case j.State != StateSucceeded:
		s.fail(w, o, &apiError{Status: http.StatusConflict, Code: CodeJobNotSucceeded, Message: fmt.Sprintf("the job is %s; results exist once it succeeded", j.State)})
		return
	case j.ResultsGone:
		s.fail(w, o, &apiError{Status: http.StatusGone, Code: CodeResultsExpired, Message: "the results expired; submit the query again"})
		return
	}
	// The status line waits for the first row: a cursor that is not the
	// start of a row is still a 400.
	var bw *bufio.Writer
	m := resultsMeta{Offset: cur.Offset, Total: j.Rows}
	start := func() {
		if bw == nil {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
			bw = bufio.NewWriter(w)
		}
	}
	next, eof, err := s.store.ReadResult(r.Context(), &j, ResultPos{Part: cur.Part, Byte: cur.Byte}, limit, func(row []byte) error {
		start()
		_, _ = bw.Write(row)
		m.Rows++
		return bw.WriteByte('\n')
	})
	switch {
	case err != nil && bw == nil && errors.Is(err, ErrBadPosition):
		s.fail(w, o, badCursor)
		return
	case err != nil && bw == nil && archive.IsNotExist(err):
		// A succeeded job whose rows never reached the store (the service
		// stopped between a synchronous answer and the write).
		s.fail(w, o, &apiError{Status: http.StatusGone, Code: CodeResultsExpired, Message: "the results were not stored; submit the query again"})
		return
	case err != nil && bw == nil:
		s.fail(w, o, &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the results could not be read: " + err.Error()})
		return
	case err != nil:
		// Mid-page: the status is sent; the page ends without its _meta
		// line, which tells the client it is incomplete.
		s.log.Warn("results page cut short", "job", j.ID, "error", err)
		o.code = "read_failed"
		_ = bw.Flush()
		return
	}
	start()
	m.Complete = eof || cur.Offset+m.Rows >= j.Rows
	if !m.Complete {
		m.NextCursor = encodeCursor(cursor{Job: j.ID, Offset: cur.Offset + m.Rows, Part: next.Part, Byte: next.Byte})
	}
	b, _ := json.Marshal(map[string]resultsMeta{"_meta": m})
	_, _ = bw.Write(append(b, '\n'))
	_ = bw.Flush()
}

// heartbeat is the interval of SSE comments that keep proxies from closing
// an idle stream.
const heartbeat = 15 * time.Second

func (s *Server) events(w http.ResponseWriter, r *http.Request, p auth.Principal, o *outcome) {
	j, ok := s.lookup(w, r, p, o)
	if !ok {
		return
	}
	after := 0
	if le := r.Header.Get("Last-Event-ID"); le != "" {
		n, err := strconv.Atoi(le)
		if err != nil || n < 0 || n > 100 {
			s.fail(w, o, &apiError{Status: http.StatusBadRequest, Code: CodeBadParam, Param: "Last-Event-ID", Message: "Last-Event-ID: an event seq"})
			return
		}
		after = n
	}
	past, next, stop := s.mgr.Subscribe(j.ID, after)
	defer stop()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(ev Event) {
		b, _ := json.Marshal(ev)
		fmt.Fprintf(w, "id: %d\nevent: state\ndata: %s\n\n", ev.Seq, b)
	}
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	for _, ev := range past {
		send(ev)
	}
	flush()
	if next == nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-next:
			if !ok {
				return // final (sent), or fell behind: the client resumes with Last-Event-ID
			}
			send(ev)
			flush()
		case <-tick.C:
			_, _ = io.WriteString(w, ": keep-alive\n\n")
			flush()
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
}
