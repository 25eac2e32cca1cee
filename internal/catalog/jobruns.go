package catalog

// This file owns the job-run documents: one per batch run of a metric
// (`hourglass jobs batch`), written by the driver
// (metrics-jobs/hourglass_jobs/batch.py, from the spec's job_runs), mapped by
// internal/essetup and read by the lag monitor (overrunning and failed runs).

// JobRunsIndex holds the job-run documents.
const JobRunsIndex = "hourglass-jobruns"

// Fields of a job-run document.
const (
	RunMetric          = "metric"
	RunHour            = "hour" // the event-time hour recomputed, RFC 3339
	RunMode            = "mode" // batch
	RunSource          = "source"
	RunStart           = "start" // RFC 3339, seconds
	RunEnd             = "end"
	RunDurationSeconds = "duration_seconds" // a number; absent while running
	RunRecords         = "records"
	RunDocuments       = "documents"
	RunOutcome         = "outcome" // one of the Run* outcomes below
	RunError           = "error"
	RunKafkaFrom       = "kafka_from" // the Kafka-timestamp range read
	RunKafkaTo         = "kafka_to"
	RunOffsets         = "offsets" // per partition [start, end)
)

// JobRunFields lists every field a job-run document may have.
var JobRunFields = []string{RunMetric, RunHour, RunMode, RunSource, RunStart, RunEnd, RunDurationSeconds, RunRecords,
	RunDocuments, RunOutcome, RunError, RunKafkaFrom, RunKafkaTo, RunOffsets}

// Outcomes of a run (RunOutcome).
const (
	RunRunning   = "running"
	RunOK        = "ok"
	RunFailed    = "failed"
	RunNotClosed = "not_closed" // the hour was still open: nothing recomputed
)

// JobRunsSpec tells the driver where and with which fields it records a
// batch run; it refuses to write a field that Fields does not name.
type JobRunsSpec struct {
	Index  string   `json:"index"`
	Fields []string `json:"fields"`
}

func jobRunsSpec() JobRunsSpec {
	return JobRunsSpec{Index: JobRunsIndex, Fields: append([]string(nil), JobRunFields...)}
}
