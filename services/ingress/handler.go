package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/hourglass-io/hourglass/internal/dlq"
	"github.com/hourglass-io/hourglass/internal/record"
)

// recordError is one rejected record in a response.
type recordError struct {
	Index   int    `json:"index"`
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// response is the JSON body of every /v1/logs answer.
type response struct {
	Accepted int           `json:"accepted"`
	Rejected int           `json:"rejected"`
	Code     string        `json:"code,omitempty"`
	Message  string        `json:"message,omitempty"`
	Errors   []recordError `json:"errors,omitempty"`
}

// handler serves POST /v1/logs.
type handler struct {
	cfg     Config
	keys    *Keys
	sink    Sink
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time // the clock event times are bounded against

	requests gauge // requests past admission, bounded by cfg.MaxConcurrent
	inflight gauge // bytes held by requests, bounded by cfg.MaxInflightBytes

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

func newLogsHandler(cfg Config, keys *Keys, sink Sink, log *slog.Logger, m *metrics) *handler {
	return &handler{cfg: cfg, keys: keys, sink: sink, log: log, metrics: m, now: time.Now,
		requests: gauge{max: int64(cfg.MaxConcurrent)}, inflight: gauge{max: cfg.MaxInflightBytes},
		limiters: map[string]*rate.Limiter{}}
}

// gauge is a bounded counter taken without waiting: over the bound, the
// caller refuses the work (503) instead of queueing it.
type gauge struct {
	max int64
	cur atomic.Int64
}

func (g *gauge) tryAdd(n int64) bool {
	if g.cur.Add(n) > g.max {
		g.cur.Add(-n)
		return false
	}
	return true
}

func (g *gauge) done(n int64) { g.cur.Add(-n) }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status, code := h.serve(w, r)
	h.metrics.requests.WithLabelValues(strconv.Itoa(status), code).Inc()
	h.metrics.request.Observe(time.Since(start).Seconds())
}

// serve answers one request. Everything that can refuse a request without
// reading its body comes first, cheapest first: method, API key, the tenant's
// rate limit, the bound on concurrent requests. Only then is the body read,
// streamed record by record, with the bytes the request keeps charged to the
// shared in-flight budget.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) (int, string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return h.fail(w, reqErr(http.StatusMethodNotAllowed, CodeMethod, "use POST"))
	}
	key, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass"`)
		return h.fail(w, reqErr(http.StatusUnauthorized, CodeMissingKey, "send Authorization: Bearer <api key>"))
	}
	entry, ok := h.keys.Lookup(key)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hourglass", error="invalid_token"`)
		return h.fail(w, reqErr(http.StatusUnauthorized, CodeInvalidKey, "unknown API key"))
	}
	if entry.Disabled {
		return h.fail(w, reqErr(http.StatusForbidden, CodeKeyDisabled, "this API key is disabled"))
	}
	tenant := entry.Tenant

	// Rate limit, before the body is read: a request is admitted while the
	// tenant's bucket holds at least one token; its records are charged once
	// counted, which may take the bucket into debt (by at most MaxRecords).
	// While in debt the tenant is refused here, at the cost of a header parse.
	// Over time the tenant gets TenantRate records/s, as with charging upfront,
	// and no body is read only to be refused.
	lim := h.limiter(tenant)
	if tokens := lim.TokensAt(time.Now()); tokens < 1 {
		wait := time.Duration((1 - tokens) / h.cfg.TenantRate * float64(time.Second))
		setRetryAfter(w, wait)
		return h.fail(w, reqErr(http.StatusTooManyRequests, CodeRateLimited,
			"tenant %s is over %g records/s; retry after %s", tenant, h.cfg.TenantRate, wait.Round(time.Millisecond)))
	}

	if !h.requests.tryAdd(1) {
		setRetryAfter(w, h.cfg.RetryAfter)
		return h.fail(w, reqErr(http.StatusServiceUnavailable, CodeOverloaded,
			"more than %d requests in progress; retry", h.cfg.MaxConcurrent))
	}
	defer h.requests.done(1)
	b := &batch{h: h, tenant: tenant, now: h.now()}
	defer func() { h.inflight.done(b.held) }()
	if rerr := b.hold(int64(h.cfg.MaxLineBytes)); rerr != nil { // the line buffer
		setRetryAfter(w, h.cfg.RetryAfter)
		return h.fail(w, rerr)
	}
	if r.ContentLength > 0 {
		h.metrics.bytes.Add(float64(r.ContentLength))
	}

	n, rerr := readRecords(w, r, h.cfg, b.take)
	if rerr != nil {
		if rerr.code == CodeOverloaded {
			setRetryAfter(w, h.cfg.RetryAfter)
		}
		return h.fail(w, rerr)
	}
	lim.ReserveN(time.Now(), n) // n <= MaxRecords <= TenantBurst: always granted, possibly as debt

	sinkCtx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.SinkTimeout)
	defer cancel()
	sinkStart := time.Now()
	if err := h.sink.Write(sinkCtx, b.entries); err != nil {
		h.metrics.sink.WithLabelValues("error").Observe(time.Since(sinkStart).Seconds())
		h.log.Warn("sink write failed; answering 503", "tenant", tenant, "records", len(b.entries), "error", err)
		setRetryAfter(w, h.cfg.RetryAfter)
		return h.fail(w, reqErr(http.StatusServiceUnavailable, CodeSinkUnavailable, "the pipeline cannot take data now; retry"))
	}
	h.metrics.sink.WithLabelValues("ok").Observe(time.Since(sinkStart).Seconds())

	rejected := 0
	for _, e := range b.entries {
		if e.Stream == StreamDLQ {
			rejected++
			h.metrics.rejected.WithLabelValues(string(e.Reason)).Inc()
		}
	}
	resp := response{Accepted: n - rejected, Rejected: rejected, Errors: b.errs}
	h.metrics.accepted.WithLabelValues(tenant).Add(float64(resp.Accepted))
	status := http.StatusAccepted
	switch {
	case resp.Rejected > 0 && resp.Accepted > 0:
		status = http.StatusMultiStatus
	case resp.Rejected > 0:
		status = http.StatusUnprocessableEntity
	}
	writeJSON(w, status, resp)
	return status, ""
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(d.Seconds(), 1)))))
}

// batch collects one request's sink entries as its records are read.
type batch struct {
	h       *handler
	tenant  string
	now     time.Time // event times are bounded against this instant
	entries []Entry
	errs    []recordError
	held    int64 // bytes charged to h.inflight
}

// hold charges n bytes to the shared in-flight budget.
func (b *batch) hold(n int64) *requestError {
	if !b.h.inflight.tryAdd(n) {
		return reqErr(http.StatusServiceUnavailable, CodeOverloaded,
			"requests in progress hold more than %d bytes; retry", b.h.cfg.MaxInflightBytes)
	}
	b.held += n
	return nil
}

// take decodes one record (line is only valid during the call), fixes its
// tenant from the key, bounds its event time, and keeps what the sink needs:
// the canonical record, or the line as received for the DLQ.
func (b *batch) take(line []byte) *requestError {
	h, i := b.h, len(b.entries)
	rec, unknown, err := record.Decode(line)
	h.metrics.unknownFields.Add(float64(len(unknown)))
	problems := tenantless(err)
	if len(problems) == 0 {
		switch {
		case rec.Tenant == "":
			rec.Tenant = b.tenant
		case rec.Tenant != b.tenant:
			problems = []record.Problem{{Field: record.FieldTenant, Code: record.CodeTenantMismatch,
				Message: "the record names tenant " + strconv.Quote(rec.Tenant) + " but the API key belongs to " + strconv.Quote(b.tenant)}}
		}
	}
	if !rec.Timestamp.IsZero() && !hasField(problems, record.FieldTimestamp) {
		var inv *record.InvalidError
		if errors.As(h.cfg.timeBounds().Check(rec.Timestamp, b.now), &inv) {
			problems = insertProblem(problems, inv.Problems[0])
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			b.errs = append(b.errs, recordError{Index: i, Field: p.Field, Code: string(p.Code), Message: p.Message})
		}
		if rerr := b.hold(int64(len(line))); rerr != nil {
			return rerr
		}
		b.entries = append(b.entries, Entry{Stream: StreamDLQ, Tenant: b.tenant, Value: bytes.Clone(line), Reason: dlq.RecordReason(problems[0].Code)})
		return nil
	}
	value := rec.AppendJSON(nil) // the canonical form
	if rerr := b.hold(int64(len(value))); rerr != nil {
		return rerr
	}
	b.entries = append(b.entries, Entry{Stream: StreamRaw, Tenant: b.tenant, Value: value})
	return nil
}

func hasField(ps []record.Problem, field string) bool {
	for _, p := range ps {
		if p.Field == field {
			return true
		}
	}
	return false
}

// insertProblem adds a timestamp problem where record's canonical order puts
// it: after the record-level problems, before every other field's.
func insertProblem(ps []record.Problem, p record.Problem) []record.Problem {
	i := 0
	for i < len(ps) && ps[i].Field == "" {
		i++
	}
	return slices.Insert(ps, i, p)
}

// tenantless returns a decode error's problems without "tenant missing":
// ingress sets the tenant from the API key.
func tenantless(err error) []record.Problem {
	if err == nil {
		return nil
	}
	var inv *record.InvalidError
	if !errors.As(err, &inv) {
		return []record.Problem{{Code: record.CodeMalformedJSON, Message: err.Error()}}
	}
	out := make([]record.Problem, 0, len(inv.Problems))
	for _, p := range inv.Problems {
		if p.Field == record.FieldTenant && p.Code == record.CodeMissing {
			continue
		}
		out = append(out, p)
	}
	return out
}

func (h *handler) limiter(tenant string) *rate.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, ok := h.limiters[tenant]
	if !ok {
		l = rate.NewLimiter(rate.Limit(h.cfg.TenantRate), h.cfg.TenantBurst)
		h.limiters[tenant] = l
	}
	return l
}

func (h *handler) fail(w http.ResponseWriter, e *requestError) (int, string) {
	writeJSON(w, e.status, response{Code: e.code, Message: e.msg})
	return e.status, e.code
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
