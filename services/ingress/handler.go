package ingress

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

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

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status, code := h.serve(w, r)
	h.metrics.requests.WithLabelValues(strconv.Itoa(status), code).Inc()
	h.metrics.request.Observe(time.Since(start).Seconds())
}

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
	if r.ContentLength > 0 {
		h.metrics.bytes.Add(float64(r.ContentLength))
	}

	lines, rerr := readRecords(w, r, h.cfg)
	if rerr != nil {
		return h.fail(w, rerr)
	}

	now := time.Now()
	res := h.limiter(tenant).ReserveN(now, len(lines))
	if delay := res.DelayFrom(now); !res.OK() || delay > 0 {
		res.CancelAt(now)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(delay.Seconds(), 1)))))
		return h.fail(w, reqErr(http.StatusTooManyRequests, CodeRateLimited,
			"tenant %s is over %g records/s; retry after %s", tenant, h.cfg.TenantRate, delay.Round(time.Millisecond)))
	}

	entries, errs := h.validate(tenant, lines)
	sinkCtx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.SinkTimeout)
	defer cancel()
	sinkStart := time.Now()
	if err := h.sink.Write(sinkCtx, entries); err != nil {
		h.metrics.sink.WithLabelValues("error").Observe(time.Since(sinkStart).Seconds())
		h.log.Warn("sink write failed; answering 503", "tenant", tenant, "records", len(entries), "error", err)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(h.cfg.RetryAfter.Seconds()))))
		return h.fail(w, reqErr(http.StatusServiceUnavailable, CodeSinkUnavailable, "the pipeline cannot take data now; retry"))
	}
	h.metrics.sink.WithLabelValues("ok").Observe(time.Since(sinkStart).Seconds())

	rejected := countRejected(errs)
	resp := response{Accepted: len(lines) - rejected, Rejected: rejected, Errors: errs}
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

// validate decodes every line, fixes the tenant from the key, and returns the
// sink entries (canonical accepted records, rejected lines for the DLQ) and
// the per-record errors (one or more per rejected record).
func (h *handler) validate(tenant string, lines [][]byte) ([]Entry, []recordError) {
	entries := make([]Entry, 0, len(lines))
	var errs []recordError
	for i, line := range lines {
		rec, unknown, err := record.Decode(line)
		h.metrics.unknownFields.Add(float64(len(unknown)))
		problems := tenantless(err)
		if len(problems) == 0 {
			switch {
			case rec.Tenant == "":
				rec.Tenant = tenant
			case rec.Tenant != tenant:
				problems = []record.Problem{{Field: record.FieldTenant, Code: CodeTenantMismatch,
					Message: "the record names tenant " + strconv.Quote(rec.Tenant) + " but the API key belongs to " + strconv.Quote(tenant)}}
			}
		}
		if len(problems) > 0 {
			for _, p := range problems {
				errs = append(errs, recordError{Index: i, Field: p.Field, Code: string(p.Code), Message: p.Message})
			}
			h.metrics.rejected.WithLabelValues(string(problems[0].Code)).Inc()
			entries = append(entries, Entry{Stream: StreamDLQ, Tenant: tenant, Value: line, Reason: string(problems[0].Code)})
			continue
		}
		value, err := json.Marshal(rec)
		if err != nil { // cannot happen for a validated record; never drop it silently
			h.log.Error("encode accepted record", "error", err)
			errs = append(errs, recordError{Index: i, Code: "internal", Message: err.Error()})
			entries = append(entries, Entry{Stream: StreamDLQ, Tenant: tenant, Value: line, Reason: "internal"})
			continue
		}
		entries = append(entries, Entry{Stream: StreamRaw, Tenant: tenant, Value: value})
	}
	return entries, errs
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

func countRejected(errs []recordError) int {
	seen := map[int]bool{}
	for _, e := range errs {
		seen[e.Index] = true
	}
	return len(seen)
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
