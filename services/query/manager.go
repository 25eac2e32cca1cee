package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog/archivequery"
)

// Manager owns the jobs: admission (per-tenant and global limits), a fair
// queue (round-robin between tenants), runs on the engine, the durable
// records, and the events of every state change.
type Manager struct {
	cfg    Config
	engine Engine
	store  *Store
	pub    *eventPublisher
	log    *slog.Logger
	m      *metrics
	now    func() time.Time

	runCtx    context.Context // parent of every run; cancelled at the end of a drain
	runCancel context.CancelFunc
	wg        sync.WaitGroup // running jobs
	loops     sync.WaitGroup // scheduler and janitor
	stop      chan struct{}

	mu       sync.Mutex
	jobs     map[string]*entry
	idem     map[idemKey]string
	queues   map[string][]string // tenant → queued job ids, oldest first
	ring     []string            // tenants with queued jobs, in round-robin order
	rr       int                 // next position in ring
	running  map[string]int      // tenant → running jobs
	active   map[string]int      // tenant → queued + running jobs
	nRunning int
	nActive  int
	draining bool
	wake     chan struct{}
}

type idemKey struct{ owner, tenant, key string }

type entry struct {
	job     *Job
	plan    *archivequery.Plan
	runCtx  context.Context         // set while running
	cancel  context.CancelCauseFunc // cancels runCtx with a *JobError
	subs    map[chan Event]struct{}
	done    chan struct{} // closed when the job reaches a final state
	pmu     sync.Mutex    // orders writes of the record
	written int           // Seq of the last record written
	// rows of a synchronous job that succeeded, kept for its waiting caller
	// (WaitRows) so the answer does not read them back from the store;
	// dropped once taken, or by the janitor.
	rows []map[string]any
	// stored is closed once the job's collected rows are in the store (nil:
	// nothing pending). A synchronous job answers from memory first and
	// stores its rows after (run).
	stored chan struct{}
}

// NewManager builds a manager; Start loads the records and starts it.
func NewManager(cfg Config, engine Engine, store *Store, pub Publisher, log *slog.Logger, m *metrics) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, engine: engine, store: store, pub: newEventPublisher(pub, log, m), log: log, m: m, now: time.Now,
		runCtx: ctx, runCancel: cancel, stop: make(chan struct{}),
		jobs: map[string]*entry{}, idem: map[idemKey]string{}, queues: map[string][]string{},
		running: map[string]int{}, active: map[string]int{}, wake: make(chan struct{}, 1)}
}

// Start loads the job records: a job that was running when the service
// stopped is marked failed (its Spark operation ended with the session); a
// queued one is queued again. Then it starts the scheduler and the janitor.
func (m *Manager) Start(ctx context.Context) error {
	jobs, bad, err := m.store.Load(ctx)
	if err != nil {
		return err
	}
	for _, e := range bad {
		m.log.Warn("job record skipped", "error", e)
	}
	slices.SortFunc(jobs, func(a, b *Job) int { return a.Created.Compare(b.Created) })
	m.pub.start()
	var restarted []*entry
	m.mu.Lock()
	for _, j := range jobs {
		e := &entry{job: j, subs: map[chan Event]struct{}{}, done: make(chan struct{})}
		if len(j.Events) > 0 {
			e.written = j.Events[len(j.Events)-1].Seq
		}
		m.jobs[j.ID] = e
		if j.IdempotencyKey != "" {
			m.idem[idemKey{j.Owner, j.Tenant, j.IdempotencyKey}] = j.ID
		}
		switch j.State {
		case StateRunning:
			restarted = append(restarted, e)
		case StateQueued:
			plan, err := archivequery.Compile(j.Query, archivequery.Caller{Tenant: j.Tenant, Admin: j.Query.SQL != ""}, m.cfg.Limits)
			if err != nil {
				restarted = append(restarted, e)
				continue
			}
			e.plan = plan
			m.enqueue(e)
		default:
			close(e.done)
		}
	}
	m.mu.Unlock()
	for _, e := range restarted {
		// Never counted as active: fail it directly.
		m.mu.Lock()
		now := m.now().UTC()
		e.job.Finished = &now
		m.transition(e, StateFailed, &JobError{Code: JobCodeServiceRestarted,
			Message: "the query service stopped while this job ran or waited; its Spark operation did not survive: submit it again"})
		m.mu.Unlock()
		if err := m.persist(ctx, e); err != nil {
			return err
		}
	}
	m.loops.Add(2)
	go m.schedule()
	go m.janitor()
	m.kick()
	return nil
}

// Submission is a job as the API asks for it.
type Submission struct {
	Owner, Tenant  string
	Query          archivequery.Query
	Plan           *archivequery.Plan
	IdempotencyKey string
	Fingerprint    string
	Sync           bool
}

// QuotaError refuses a job over a limit: 429 with Retry-After.
type QuotaError struct {
	Scope      string // "tenant" or "service"
	Limit      int
	RetryAfter time.Duration
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%d jobs are queued or running for this %s, its limit; retry later", e.Limit, e.Scope)
}

// ErrIdempotencyConflict: the Idempotency-Key was used with another body.
var ErrIdempotencyConflict = errors.New("this Idempotency-Key was used with a different query")

// ErrDraining: the service is shutting down.
var ErrDraining = errors.New("the service is shutting down")

// Submit queues a job, or returns the job of the same Idempotency-Key
// (created is then false). The record is durable before Submit returns.
func (m *Manager) Submit(ctx context.Context, s Submission) (st Status, created bool, err error) {
	m.mu.Lock()
	if s.IdempotencyKey != "" {
		if id, ok := m.idem[idemKey{s.Owner, s.Tenant, s.IdempotencyKey}]; ok {
			j := m.jobs[id].job
			defer m.mu.Unlock()
			if j.Fingerprint != s.Fingerprint {
				return Status{}, false, ErrIdempotencyConflict
			}
			return j.status(), false, nil
		}
	}
	switch {
	case m.draining:
		m.mu.Unlock()
		return Status{}, false, ErrDraining
	case m.active[s.Tenant] >= m.cfg.MaxJobsPerTenant:
		m.mu.Unlock()
		m.m.rejected.WithLabelValues("tenant").Inc()
		return Status{}, false, &QuotaError{Scope: "tenant", Limit: m.cfg.MaxJobsPerTenant, RetryAfter: m.cfg.RetryAfter}
	case m.nActive >= m.cfg.MaxJobs:
		m.mu.Unlock()
		m.m.rejected.WithLabelValues("service").Inc()
		return Status{}, false, &QuotaError{Scope: "service", Limit: m.cfg.MaxJobs, RetryAfter: m.cfg.RetryAfter}
	}
	now := m.now().UTC()
	j := &Job{ID: newID(), Tenant: s.Tenant, Owner: s.Owner, Query: s.Query, Sync: s.Sync,
		IdempotencyKey: s.IdempotencyKey, Fingerprint: s.Fingerprint, State: StateQueued, Created: now}
	j.Events = []Event{{JobID: j.ID, Tenant: j.Tenant, Seq: 1, State: StateQueued, Time: now}}
	e := &entry{job: j, plan: s.Plan, subs: map[chan Event]struct{}{}, done: make(chan struct{})}
	data, _ := json.Marshal(j)
	// Counted as active before the write, so concurrent submits cannot
	// pass the limits together; undone if the write fails.
	m.active[s.Tenant]++
	m.nActive++
	m.mu.Unlock()

	if err := m.store.replace(ctx, m.store.jobPath(j.ID), data); err != nil {
		m.mu.Lock()
		m.active[s.Tenant]--
		m.nActive--
		m.mu.Unlock()
		return Status{}, false, err
	}
	e.written = 1
	m.mu.Lock()
	if s.IdempotencyKey != "" {
		k := idemKey{s.Owner, s.Tenant, s.IdempotencyKey}
		if id, ok := m.idem[k]; ok { // a concurrent submit with the same key won
			m.active[s.Tenant]--
			m.nActive--
			other := m.jobs[id].job
			m.mu.Unlock()
			_ = m.store.Delete(context.WithoutCancel(ctx), j.ID)
			if other.Fingerprint != s.Fingerprint {
				return Status{}, false, ErrIdempotencyConflict
			}
			return other.status(), false, nil
		}
		m.idem[k] = j.ID
	}
	m.jobs[j.ID] = e
	m.active[s.Tenant]-- // enqueue counts it again
	m.nActive--
	m.enqueue(e)
	st = j.status()
	m.mu.Unlock()
	m.pub.publish(j.Events[0])
	m.m.submitted.Inc()
	m.kick()
	return st, true, nil
}

// enqueue adds a queued job to its tenant's queue (m.mu held).
func (m *Manager) enqueue(e *entry) {
	t := e.job.Tenant
	if len(m.queues[t]) == 0 {
		m.ring = append(m.ring, t)
	}
	m.queues[t] = append(m.queues[t], e.job.ID)
	m.active[t]++
	m.nActive++
	m.m.queued.Inc()
}

func (m *Manager) kick() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// schedule starts queued jobs while there is room, taking tenants in turn.
func (m *Manager) schedule() {
	defer m.loops.Done()
	for {
		select {
		case <-m.stop:
			return
		case <-m.wake:
		}
		for {
			e := m.next()
			if e == nil {
				break
			}
			m.wg.Add(1)
			go m.run(e)
		}
	}
}

// next takes the next job to run, round-robin between tenants with queued
// jobs and room under their running limit, and marks it running.
func (m *Manager) next() *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.draining || m.nRunning >= m.cfg.MaxRunning {
		return nil
	}
	for i := 0; i < len(m.ring); i++ {
		idx := (m.rr + i) % len(m.ring)
		t := m.ring[idx]
		if m.running[t] >= m.cfg.MaxRunningPerTenant {
			continue
		}
		id := m.queues[t][0]
		m.queues[t] = m.queues[t][1:]
		if len(m.queues[t]) == 0 {
			delete(m.queues, t)
			m.ring = slices.Delete(m.ring, idx, idx+1)
			m.rr = idx
		} else {
			m.rr = idx + 1
		}
		if len(m.ring) > 0 {
			m.rr %= len(m.ring)
		} else {
			m.rr = 0
		}
		e := m.jobs[id]
		m.running[t]++
		m.nRunning++
		m.m.queued.Dec()
		m.m.running.Inc()
		e.runCtx, e.cancel = context.WithCancelCause(m.runCtx)
		now := m.now().UTC()
		e.job.Started = &now
		m.transition(e, StateRunning, nil)
		return e
	}
	return nil
}

// transition moves a job to state and records the event (m.mu held). The
// caller persists the record (persist) after releasing m.mu.
func (m *Manager) transition(e *entry, state State, jerr *JobError) {
	j := e.job
	j.State = state
	j.Error = jerr
	ev := Event{JobID: j.ID, Tenant: j.Tenant, Seq: len(j.Events) + 1, State: state, Time: m.now().UTC(), Error: jerr}
	if state == StateSucceeded {
		ev.Rows = j.Rows
	}
	j.Events = append(j.Events, ev)
	for ch := range e.subs {
		select {
		case ch <- ev:
		default: // a subscriber that does not keep up is dropped; it resumes with Last-Event-ID
			delete(e.subs, ch)
			close(ch)
		}
	}
	if state.Final() {
		for ch := range e.subs {
			delete(e.subs, ch)
			close(ch)
		}
		close(e.done)
	}
	m.pub.publish(ev)
}

// persist writes the job's latest record unless a later one was written.
func (m *Manager) persist(ctx context.Context, e *entry) error {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	m.mu.Lock()
	seq := len(e.job.Events)
	data, err := json.Marshal(e.job)
	m.mu.Unlock()
	if err != nil || seq <= e.written {
		return err
	}
	if err := m.store.replace(ctx, m.store.jobPath(e.job.ID), data); err != nil {
		m.m.storeErrors.Inc()
		m.log.Error("job record not written", "job", e.job.ID, "error", err)
		return err
	}
	e.written = seq
	return nil
}

// run executes a running job on the engine and records its end.
func (m *Manager) run(e *entry) {
	defer m.wg.Done()
	ctx := e.runCtx
	// The running record is written while Spark works (persist orders it
	// before the final one): a synchronous answer does not wait for it.
	persisted := make(chan struct{})
	go func() {
		defer close(persisted)
		_ = m.persist(context.WithoutCancel(ctx), e)
	}()
	defer func() { <-persisted }()
	tctx, cancel := context.WithTimeout(ctx, m.cfg.JobTimeout)
	defer cancel()
	start := time.Now()
	out := "" // collected by the engine, stored by PutResult
	if e.plan.Limit > m.cfg.InlineRows {
		out = m.store.ResultDir(e.job.ID) // written by Spark
	}
	res, err := m.engine.Run(tctx, e.job.ID, e.job.Tenant, e.plan, out)
	m.m.runSeconds.Observe(time.Since(start).Seconds())
	attempts := 1
	var ee *EngineError
	switch {
	case res != nil && res.Attempts > 1:
		attempts = res.Attempts
	case errors.As(err, &ee) && ee.Attempts > 1:
		attempts = ee.Attempts
	}
	m.mu.Lock()
	e.job.Attempts = attempts
	m.mu.Unlock()
	switch {
	case err != nil:
		jerr := jobError(err, tctx.Err(), context.Cause(ctx))
		state := StateFailed
		if jerr.Code == JobCodeCancelled || jerr.Code == JobCodeClientGone {
			state = StateCancelled
		}
		m.finish(context.Background(), e, state, jerr, nil)
	case res.Written != (out != ""):
		m.finish(context.Background(), e, StateFailed, &JobError{Code: JobCodeInternal,
			Message: fmt.Sprintf("the engine answered written=%t for out %q", res.Written, out)}, nil)
	case res.rows() > e.plan.Limit:
		m.finish(context.Background(), e, StateFailed, &JobError{Code: JobCodeTooManyRows,
			Message: fmt.Sprintf("the engine returned %d rows, over the plan's limit of %d", res.rows(), e.plan.Limit)}, nil)
	case res.Written:
		m.finish(context.Background(), e, StateSucceeded, nil, res)
	case e.job.Sync:
		// The waiting caller gets the rows from memory now; they are stored
		// after, for the results endpoint (which waits for the write). A
		// failed write leaves the results gone (410), never wrong.
		stored := make(chan struct{})
		m.mu.Lock()
		e.rows, e.stored = res.Rows, stored
		m.mu.Unlock()
		m.finish(context.Background(), e, StateSucceeded, nil, res)
		err := m.store.PutResult(context.Background(), e.job.ID, res.Rows)
		if err != nil {
			m.m.storeErrors.Inc()
			m.log.Error("a synchronous job's rows were answered but not stored", "job", e.job.ID, "error", err)
			m.mu.Lock()
			e.job.ResultsGone = true
			m.mu.Unlock()
			m.rewrite(context.Background(), e)
		}
		close(stored)
	default:
		if err := m.store.PutResult(context.Background(), e.job.ID, res.Rows); err != nil {
			m.m.storeErrors.Inc()
			m.finish(context.Background(), e, StateFailed, &JobError{Code: JobCodeInternal, Message: "the results could not be stored: " + err.Error()}, nil)
			return
		}
		m.finish(context.Background(), e, StateSucceeded, nil, res)
	}
}

// ResultsStored waits until the job's results are in the store (they may
// follow a synchronous answer) or ctx ends, and returns the job's record.
func (m *Manager) ResultsStored(ctx context.Context, id string) (Job, error) {
	m.mu.Lock()
	e, ok := m.jobs[id]
	var stored chan struct{}
	if ok {
		stored = e.stored
	}
	m.mu.Unlock()
	if stored != nil {
		select {
		case <-stored:
		case <-ctx.Done():
			return Job{}, ctx.Err()
		}
	}
	j, _ := m.Lookup(id)
	return j, nil
}

// rewrite writes the job's record again after a change that is not a
// state transition (results gone).
func (m *Manager) rewrite(ctx context.Context, e *entry) {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	m.mu.Lock()
	data, err := json.Marshal(e.job)
	m.mu.Unlock()
	if err != nil {
		return
	}
	if err := m.store.replace(ctx, m.store.jobPath(e.job.ID), data); err != nil {
		m.m.storeErrors.Inc()
		m.log.Error("job record not written", "job", e.job.ID, "error", err)
	}
}

// finish moves a job to a final state, frees its slot and persists it.
func (m *Manager) finish(ctx context.Context, e *entry, state State, jerr *JobError, res *Result) {
	m.mu.Lock()
	j := e.job
	if j.State.Final() {
		m.mu.Unlock()
		return
	}
	t := j.Tenant
	switch j.State {
	case StateRunning:
		m.running[t]--
		m.nRunning--
		m.m.running.Dec()
	case StateQueued:
		m.dequeue(e)
		m.m.queued.Dec()
	}
	m.active[t]--
	m.nActive--
	if m.active[t] == 0 {
		delete(m.active, t)
		delete(m.running, t)
	}
	now := m.now().UTC()
	j.Finished = &now
	if res != nil {
		j.Rows, j.Columns, j.ResultsWritten = res.rows(), res.Columns, res.Written
		exp := now.Add(m.cfg.ResultTTL)
		j.ResultsExpire = &exp
	}
	if e.cancel != nil {
		e.cancel(nil)
	}
	m.transition(e, state, jerr)
	m.mu.Unlock()
	m.m.finished.WithLabelValues(string(state)).Inc()
	_ = m.persist(context.WithoutCancel(ctx), e)
	m.kick()
}

// dequeue removes a queued job from its tenant's queue (m.mu held).
func (m *Manager) dequeue(e *entry) {
	t := e.job.Tenant
	q := m.queues[t]
	if i := slices.Index(q, e.job.ID); i >= 0 {
		q = slices.Delete(q, i, i+1)
	}
	if len(q) > 0 {
		m.queues[t] = q
		return
	}
	delete(m.queues, t)
	if i := slices.Index(m.ring, t); i >= 0 {
		m.ring = slices.Delete(m.ring, i, i+1)
		if m.rr > i {
			m.rr--
		}
		if len(m.ring) > 0 {
			m.rr %= len(m.ring)
		} else {
			m.rr = 0
		}
	}
}

// Cancel cancels a job: a queued one at once, a running one by interrupting
// its Spark operation (the job turns cancelled when the engine returns).
// reason is JobCodeCancelled or JobCodeClientGone.
func (m *Manager) Cancel(id, reason, message string) {
	m.mu.Lock()
	e, ok := m.jobs[id]
	if !ok || e.job.State.Final() {
		m.mu.Unlock()
		return
	}
	jerr := &JobError{Code: reason, Message: message}
	if e.job.State == StateRunning {
		e.cancel(jerr)
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.finish(context.Background(), e, StateCancelled, jerr, nil)
}

// Lookup returns a job's record (a copy) if visible returns true for it.
func (m *Manager) Lookup(id string) (Job, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.jobs[id]
	if !ok {
		return Job{}, false
	}
	j := *e.job
	j.Events = slices.Clone(j.Events)
	return j, true
}

// List returns the statuses of the jobs for which keep is true, newest
// first, at most limit of them, created before `before` when it is set.
func (m *Manager) List(keep func(*Job) bool, before time.Time, limit int) []Status {
	m.mu.Lock()
	var js []*Job
	for _, e := range m.jobs {
		if keep(e.job) && (before.IsZero() || e.job.Created.Before(before)) {
			js = append(js, e.job)
		}
	}
	slices.SortFunc(js, func(a, b *Job) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return -compareStrings(a.ID, b.ID)
	})
	if len(js) > limit {
		js = js[:limit]
	}
	out := make([]Status, len(js))
	for i, j := range js {
		out[i] = j.status()
	}
	m.mu.Unlock()
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Wait waits until the job is final or ctx ends, and returns its record
// and, for a synchronous job that succeeded, its rows if no earlier Wait
// took them (nil otherwise: read them from the store).
func (m *Manager) Wait(ctx context.Context, id string) (Job, []map[string]any, bool) {
	m.mu.Lock()
	e, ok := m.jobs[id]
	m.mu.Unlock()
	if !ok {
		return Job{}, nil, false
	}
	select {
	case <-e.done:
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	j := *e.job
	j.Events = slices.Clone(j.Events)
	var rows []map[string]any
	if j.State.Final() {
		rows, e.rows = e.rows, nil
	}
	return j, rows, true
}

// Subscribe returns the job's events after seq, and a channel of the next
// ones (nil when the job is final: the history is complete). The channel is
// closed at the final event, or if the subscriber falls behind. Call the
// returned stop when done.
func (m *Manager) Subscribe(id string, after int) (past []Event, next <-chan Event, stop func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.jobs[id]
	if !ok {
		return nil, nil, func() {}
	}
	for _, ev := range e.job.Events {
		if ev.Seq > after {
			past = append(past, ev)
		}
	}
	if e.job.State.Final() {
		return past, nil, func() {}
	}
	ch := make(chan Event, 16)
	e.subs[ch] = struct{}{}
	return past, ch, func() {
		m.mu.Lock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
		m.mu.Unlock()
	}
}

// janitor expires results and old job records.
func (m *Manager) janitor() {
	defer m.loops.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.expire(context.Background())
		}
	}
}

// expire deletes results past their TTL and records past JobTTL.
func (m *Manager) expire(ctx context.Context) {
	now := m.now()
	var gone, drop []*entry
	m.mu.Lock()
	for id, e := range m.jobs {
		j := e.job
		if !j.State.Final() {
			continue
		}
		if j.Finished != nil && now.Sub(*j.Finished) > m.cfg.JobTTL {
			drop = append(drop, e)
			delete(m.jobs, id)
			if j.IdempotencyKey != "" {
				delete(m.idem, idemKey{j.Owner, j.Tenant, j.IdempotencyKey})
			}
			continue
		}
		if e.rows != nil && j.Finished != nil && now.Sub(*j.Finished) > m.cfg.SyncMax {
			e.rows = nil // its caller gave up waiting
		}
		if j.ResultsExpire != nil && !j.ResultsGone && now.After(*j.ResultsExpire) {
			gone = append(gone, e)
		}
	}
	m.mu.Unlock()
	for _, e := range gone {
		if err := m.store.DeleteResult(ctx, e.job.ID); err != nil {
			m.log.Warn("expired result not deleted", "job", e.job.ID, "error", err)
			continue
		}
		m.mu.Lock()
		e.job.ResultsGone = true
		m.mu.Unlock()
		m.rewrite(ctx, e)
	}
	for _, e := range drop {
		if err := m.store.Delete(ctx, e.job.ID); err != nil {
			m.log.Warn("expired job not deleted", "job", e.job.ID, "error", err)
		}
	}
}

// Shutdown stops taking and starting jobs, waits for the running ones up to
// DrainTimeout (or ctx), then interrupts those left and marks them failed.
// Queued jobs stay queued in the store and run after a restart.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.draining = true
	m.mu.Unlock()
	close(m.stop)
	m.loops.Wait()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	timer := time.NewTimer(m.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
	m.mu.Lock()
	for _, e := range m.jobs {
		if e.job.State == StateRunning {
			e.cancel(&JobError{Code: JobCodeShutdown, Message: "the query service shut down while this job ran"})
		}
	}
	m.mu.Unlock()
	<-done
	m.runCancel()
	return m.pub.close(ctx)
}
