package query

import (
	"context"
	"errors"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog/archivequery"
)

// State is a job's state. A job moves queued → running → succeeded | failed
// | cancelled, or queued → cancelled | failed; the last three are final.
type State string

const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// Final reports whether s is a final state.
func (s State) Final() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCancelled
}

// Error codes of a failed or cancelled job (JobError.Code).
const (
	JobCodeSparkUnavailable = "spark_unavailable" // the Spark Connect server could not be reached or died mid-job
	JobCodeSparkError       = "spark_error"       // Spark refused or failed the statement
	JobCodeTimeout          = "timeout"           // the job ran longer than job-timeout
	JobCodeCancelled        = "cancelled"         // cancelled by its owner
	JobCodeClientGone       = "client_gone"       // a synchronous-only caller disconnected
	JobCodeServiceRestarted = "service_restarted" // the service stopped while the job ran
	JobCodeShutdown         = "shutdown"          // the service drained while the job ran
	JobCodeTooManyRows      = "too_many_rows"     // the engine returned more rows than the plan's limit
	JobCodeInternal         = "internal"          // a bug or a store failure
)

// JobError says why a job failed or was cancelled.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Event is one state change of a job, as SSE and Kafka carry it.
type Event struct {
	JobID  string    `json:"job_id"`
	Tenant string    `json:"tenant"`
	Seq    int       `json:"seq"` // 1 for the first event of a job, +1 for each next
	State  State     `json:"state"`
	Time   time.Time `json:"time"`
	Rows   int       `json:"rows,omitempty"`
	Error  *JobError `json:"error,omitempty"`
}

// Job is a job's record, as the store keeps it. Owner, Fingerprint and
// IdempotencyKey are bookkeeping: the API shows a Status.
type Job struct {
	ID             string                `json:"id"`
	Tenant         string                `json:"tenant"` // "" for an admin's every-tenant SQL
	Owner          string                `json:"owner"`  // the token's name
	Query          archivequery.Query    `json:"query"`
	Sync           bool                  `json:"sync"` // submitted by a synchronous-only caller
	IdempotencyKey string                `json:"idempotency_key,omitempty"`
	Fingerprint    string                `json:"fingerprint"` // SHA-256 of the submitted body
	State          State                 `json:"state"`
	Created        time.Time             `json:"created"`
	Started        *time.Time            `json:"started,omitempty"`
	Finished       *time.Time            `json:"finished,omitempty"`
	Rows           int                   `json:"rows"`
	Attempts       int                   `json:"attempts,omitempty"` // Spark runs: 2 when the first one's server died
	Columns        []archivequery.Column `json:"columns,omitempty"`
	Error          *JobError             `json:"error,omitempty"`
	ResultsExpire  *time.Time            `json:"results_expire,omitempty"`
	ResultsGone    bool                  `json:"results_gone,omitempty"`
	ResultsWritten bool                  `json:"results_written,omitempty"` // rows written by Spark (Store.ResultDir), not collected
	Events         []Event               `json:"events"`
}

// Status is a job as the API shows it.
type Status struct {
	ID            string                `json:"id"`
	Tenant        string                `json:"tenant"`
	State         State                 `json:"state"`
	Created       time.Time             `json:"created"`
	Started       *time.Time            `json:"started"`
	Finished      *time.Time            `json:"finished"`
	QueuedMS      *int64                `json:"queued_ms"`
	RunMS         *int64                `json:"run_ms"`
	Attempts      int                   `json:"attempts"`
	Rows          int                   `json:"rows"`
	Columns       []archivequery.Column `json:"columns"`
	Error         *JobError             `json:"error"`
	ResultsExpire *time.Time            `json:"results_expire"`
	Links         map[string]string     `json:"links"`
}

func (j *Job) status() Status {
	s := Status{ID: j.ID, Tenant: j.Tenant, State: j.State, Created: j.Created, Started: j.Started, Finished: j.Finished,
		Rows: j.Rows, Attempts: j.Attempts, Columns: j.Columns, Error: j.Error, ResultsExpire: j.ResultsExpire,
		Links: map[string]string{"self": "/v1/jobs/" + j.ID, "events": "/v1/jobs/" + j.ID + "/events"}}
	if s.Columns == nil {
		s.Columns = []archivequery.Column{}
	}
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	if j.Started != nil {
		s.QueuedMS = ms(j.Started.Sub(j.Created))
		if j.Finished != nil {
			s.RunMS = ms(j.Finished.Sub(*j.Started))
		}
	} else if j.Finished != nil {
		s.QueuedMS = ms(j.Finished.Sub(j.Created))
	}
	if j.State == StateSucceeded && !j.ResultsGone {
		s.Links["results"] = "/v1/jobs/" + j.ID + "/results"
	}
	return s
}

// Engine runs compiled plans on Spark. The service consumes it through this
// interface (the Spark Connect adapter, or a fake in tests).
type Engine interface {
	// Run executes plan for job id on a session of the tenant's ("" for an
	// admin's every-tenant SQL). With out "" it returns the rows, one map
	// per row keyed by column name, values JSON-ready (string, int64,
	// float64, nil; timestamps as RFC 3339 strings). Otherwise Spark writes
	// the rows as JSON lines into the directory out (relative to the
	// archive root; part files named in row order) and Run returns only the
	// columns and the count: the rows of a large job never pass through the
	// service. Cancelling ctx must interrupt the Spark operation, not only
	// stop waiting for it. Errors should be *EngineError.
	Run(ctx context.Context, id, tenant string, plan *archivequery.Plan, out string) (*Result, error)
}

// Result is what an engine returns for a job: the rows, or (when the
// engine wrote them) their count.
type Result struct {
	Columns  []archivequery.Column
	Rows     []map[string]any
	Written  bool // the rows are in the job's result directory
	Count    int  // rows written, when Written
	Attempts int  // Spark runs it took (2: the first one's server died)
}

// rows is the result's row count.
func (r *Result) rows() int {
	if r.Written {
		return r.Count
	}
	return len(r.Rows)
}

// EngineError is an engine failure with a job error code
// (JobCodeSparkUnavailable or JobCodeSparkError).
type EngineError struct {
	Code     string
	Err      error
	Attempts int // Spark runs tried (2: the first one's server died)
}

func (e *EngineError) Error() string { return e.Code + ": " + e.Err.Error() }
func (e *EngineError) Unwrap() error { return e.Err }

// jobError classifies a run's error for the job record.
func jobError(err error, ctxErr error, cause error) *JobError {
	switch {
	case cause != nil && errors.Is(ctxErr, context.Canceled):
		var je *JobError
		if errors.As(cause, &je) {
			return je
		}
		return &JobError{Code: JobCodeCancelled, Message: cause.Error()}
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return &JobError{Code: JobCodeTimeout, Message: "the job ran longer than the service's job timeout"}
	}
	var ee *EngineError
	if errors.As(err, &ee) {
		return &JobError{Code: ee.Code, Message: ee.Err.Error()}
	}
	return &JobError{Code: JobCodeSparkError, Message: err.Error()}
}

// Error makes a JobError usable as a cancellation cause.
func (e *JobError) Error() string { return e.Code + ": " + e.Message }
