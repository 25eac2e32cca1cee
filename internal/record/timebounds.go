package record

import (
	"errors"
	"fmt"
	"time"
)

// TimeBounds bounds a record's event time relative to a reference instant.
//
// Why event time is bounded at all: one Spark watermark serves every tenant of
// a metric (one streaming query per metric, grouped by tenant). The watermark
// is max(event time seen) − allowed lateness, and a row whose window ends
// before the watermark is dropped as late. A single record dated more than the
// allowed lateness in the future therefore moves the watermark past "now" and
// makes every current record late, for every tenant, for as long as the
// checkpoint remembers that maximum (issue 12: one record dated 2099 stopped all
// metrics). So MaxFuture must stay below the smallest allowed lateness in the
// catalog (10m): with the default of 5m the watermark can run at most 5m ahead
// of real time, which leaves every metric at least 5m of real lateness.
//
// MaxPast keeps a tenant from reopening windows (and indices, and archive
// partitions) long since closed; 7 days matches the longest replay the
// pipeline is meant to absorb after an outage of a log source.
//
// Ingress checks against its clock ([TimeBounds.Check](ts, time.Now())); the
// router checks again against the Kafka record's timestamp, so a record that
// got past ingress (a Fluentd tail, an old client) is still bounded relative
// to when it entered the pipeline.
type TimeBounds struct {
	MaxFuture time.Duration // how far after the reference an event time may be; < the smallest allowed lateness
	MaxPast   time.Duration // how far before the reference an event time may be
}

// Default event-time bounds; see [TimeBounds] for why MaxFuture must stay
// below the catalog's smallest allowed lateness (10m).
const (
	DefaultMaxFuture = 5 * time.Minute
	DefaultMaxPast   = 7 * 24 * time.Hour
)

// DefaultTimeBounds returns MaxFuture 5m and MaxPast 7 days.
func DefaultTimeBounds() TimeBounds {
	return TimeBounds{MaxFuture: DefaultMaxFuture, MaxPast: DefaultMaxPast}
}

// Validate reports every problem of the bounds: both must be > 0. It does not
// know the catalog: whoever holds both (the router) should also check that
// MaxFuture is below every metric's allowed lateness.
func (b TimeBounds) Validate() error {
	var errs []error
	if b.MaxFuture <= 0 {
		errs = append(errs, fmt.Errorf("max-future: must be > 0, got %s", b.MaxFuture))
	}
	if b.MaxPast <= 0 {
		errs = append(errs, fmt.Errorf("max-past: must be > 0, got %s", b.MaxPast))
	}
	return errors.Join(errs...)
}

// Check returns nil when ts lies within [ref−MaxPast, ref+MaxFuture] (the
// bounds themselves included), or an *InvalidError with one Problem on field
// timestamp, code [CodeOutOfRange], e.g. "2099-01-01T00:00:00Z is more than
// 5m0s after 2026-12-04T02:49:30Z".
func (b TimeBounds) Check(ts, ref time.Time) error {
	switch {
	case ts.After(ref.Add(b.MaxFuture)):
		return invalid(Problem{Field: FieldTimestamp, Code: CodeOutOfRange,
			Message: fmt.Sprintf("event time %s is more than %s after %s", fmtTime(ts), b.MaxFuture, fmtTime(ref))})
	case ts.Before(ref.Add(-b.MaxPast)):
		return invalid(Problem{Field: FieldTimestamp, Code: CodeOutOfRange,
			Message: fmt.Sprintf("event time %s is more than %s before %s", fmtTime(ts), b.MaxPast, fmtTime(ref))})
	}
	return nil
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
