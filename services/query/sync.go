package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/internal/auth"
)

// waitMap holds the synchronous requests waiting for their job, each with
// its deadline (the seed's request map with a time limit). A request leaves
// it when answered; Sweep drops entries whose request outlived its deadline
// by more than grace (a handler that never returned), so the map cannot grow
// without bound.
type waitMap struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]waiter
}

type waiter struct {
	job      string
	deadline time.Time
	gone     context.CancelFunc // ends the request's wait
}

func newWaitMap() *waitMap { return &waitMap{m: map[uint64]waiter{}} }

func (w *waitMap) add(job string, deadline time.Time, gone context.CancelFunc) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	w.m[w.next] = waiter{job: job, deadline: deadline, gone: gone}
	return w.next
}

func (w *waitMap) remove(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

func (w *waitMap) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}

// sweep ends and drops the waits past deadline+grace at now; it returns how
// many it dropped.
func (w *waitMap) sweep(now time.Time, grace time.Duration) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for id, x := range w.m {
		if now.After(x.deadline.Add(grace)) {
			x.gone()
			delete(w.m, id)
			n++
		}
	}
	return n
}

// syncAnswer is the 200 body of POST /v1/query.
type syncAnswer struct {
	Job  Status           `json:"job"`
	Rows []map[string]any `json:"rows"`
}

// syncQuery submits a job and waits for it up to ?wait (default
// SyncDefault, capped at SyncMax): 200 with the rows when it succeeded in
// time, 202 with its Location otherwise (the job goes on). If the caller
// disconnects while waiting, its job is cancelled and its Spark operation
// interrupted: nobody else knows the job.
func (s *Server) syncQuery(w http.ResponseWriter, r *http.Request, p auth.Principal, o *outcome) {
	wait := s.cfg.SyncDefault
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, err := time.ParseDuration(ws)
		if err != nil || d < 0 {
			s.fail(w, o, &apiError{Status: http.StatusBadRequest, Code: CodeBadParam, Param: "wait", Message: "wait: a duration such as 10s"})
			return
		}
		wait = min(d, s.cfg.SyncMax)
	}
	sub, aerr := s.prepare(r, p, true)
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
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	wid := s.waiting.add(st.ID, time.Now().Add(wait), cancel)
	s.m.syncWaiting.Inc()
	j, rows, _ := s.mgr.Wait(ctx, st.ID)
	s.waiting.remove(wid)
	s.m.syncWaiting.Dec()
	if r.Context().Err() != nil {
		if created && !j.State.Final() {
			s.mgr.Cancel(st.ID, JobCodeClientGone, "the synchronous caller disconnected before the answer")
		}
		o.status, o.code = 499, "client_gone"
		return
	}
	if !j.State.Final() {
		w.Header().Set("Location", "/v1/jobs/"+j.ID)
		o.status = http.StatusAccepted
		writeJSON(w, http.StatusAccepted, jobAnswer{Job: j.status()})
		return
	}
	if j.State != StateSucceeded {
		status := http.StatusUnprocessableEntity
		switch {
		case j.Error != nil && j.Error.Code == JobCodeSparkUnavailable:
			status = http.StatusServiceUnavailable
		case j.Error != nil && j.Error.Code == JobCodeTimeout:
			status = http.StatusGatewayTimeout
		}
		code, msg := "job_"+string(j.State), "the job ended "+string(j.State)
		if j.Error != nil {
			code, msg = j.Error.Code, j.Error.Message
		}
		o.status, o.code = status, code
		writeJSON(w, status, map[string]any{"error": &apiError{Code: code, Message: msg}, "job": j.status()})
		return
	}
	if rows == nil { // not this caller's job (an Idempotency-Key's), or taken
		rows, err = s.readRows(r.Context(), &j)
	}
	if err != nil {
		s.fail(w, o, &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the results could not be read: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, syncAnswer{Job: j.status(), Rows: rows})
}

// readRows reads a job's stored rows (at most the service's inline-rows).
func (s *Server) readRows(ctx context.Context, j *Job) ([]map[string]any, error) {
	rows := []map[string]any{}
	_, _, err := s.store.ReadResult(ctx, j, ResultPos{}, j.Rows, func(line []byte) error {
		var row map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&row); err != nil {
			return fmt.Errorf("query: result %s: %w", j.ID, err)
		}
		rows = append(rows, row)
		return nil
	})
	return rows, err
}
