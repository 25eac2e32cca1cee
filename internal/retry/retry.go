package retry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Defaults of a zero Backoff.
const (
	DefaultInitial = 100 * time.Millisecond
	DefaultMax     = 10 * time.Second
	DefaultFactor  = 2.0
)

// permanent marks an error as not worth another attempt.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks err as permanent: retrying the same attempt cannot help.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanent{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanent
	return errors.As(err, &p)
}

// StatusRange is an inclusive range of HTTP statuses, From through To.
type StatusRange struct{ From, To int }

// retryableStatuses: 429 (backpressure) and every status from 500 up (the
// server failed or is unavailable; an HTTP status has three digits, so 999
// is the last).
var retryableStatuses = []StatusRange{
	{http.StatusTooManyRequests, http.StatusTooManyRequests},
	{http.StatusInternalServerError, 999},
}

// RetryableStatuses lists the HTTP statuses worth another attempt, as
// inclusive ranges: the same classification as [RetryableStatus], in a form
// other programs can be given (the metric jobs' driver gets it in its job
// spec).
func RetryableStatuses() []StatusRange { return slices.Clone(retryableStatuses) }

// RetryableStatus reports whether an HTTP answer with this status is worth
// another attempt: 429 (backpressure), 5xx (the server failed or is
// unavailable), and 0 (no answer at all). Every other status is a verdict on
// the request itself, the same on every attempt.
func RetryableStatus(status int) bool {
	if status == 0 {
		return true
	}
	for _, r := range retryableStatuses {
		if r.From <= status && status <= r.To {
			return true
		}
	}
	return false
}

// Backoff is an exponential backoff policy and the loop that applies it.
// The zero value retries until success, a permanent error or the context's
// end, waiting 100ms, 200ms, 400ms … at most 10s.
type Backoff struct {
	Initial  time.Duration // the first wait (DefaultInitial when 0)
	Max      time.Duration // the longest wait (DefaultMax when 0)
	Factor   float64       // growth of the wait per failure (DefaultFactor when 0)
	Attempts int           // attempts in all, the first included; 0: no limit

	// OnRetry, when set, is called after each failed attempt that will be
	// retried (attempt counts from 1), before the wait: for logs and metrics.
	OnRetry func(attempt int, err error, wait time.Duration)
	// Wait waits d, or less when ctx ends, and then returns ctx's cause.
	// Nil waits on a timer; tests pass a fake clock.
	Wait func(ctx context.Context, d time.Duration) error
}

// Delay is the wait after the n-th failed attempt (n ≥ 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.initial()
	for range n - 1 {
		d = b.next(d)
	}
	return d
}

func (b Backoff) initial() time.Duration {
	if b.Initial > 0 {
		return min(b.Initial, b.max())
	}
	return min(DefaultInitial, b.max())
}

func (b Backoff) max() time.Duration {
	if b.Max > 0 {
		return b.Max
	}
	return DefaultMax
}

func (b Backoff) next(d time.Duration) time.Duration {
	f := b.Factor
	if f <= 0 {
		f = DefaultFactor
	}
	n := time.Duration(float64(d) * f)
	if n < d || n > b.max() { // n < d: overflow
		return b.max()
	}
	return n
}

// Do calls op until it returns nil, a permanent error, or has been called
// Attempts times, or ctx ends, waiting Delay(n) after the n-th failure. It
// returns nil; op's permanent error, or its last error when the attempts are
// used up, unchanged; or, when ctx ended, op's last error wrapped with ctx's
// cause: "<err> (gave up: <cause>)". op runs at least once.
func (b Backoff) Do(ctx context.Context, op func() error) error {
	wait := b.initial()
	for attempt := 1; ; attempt++ {
		err := op()
		switch {
		case err == nil:
			return nil
		case IsPermanent(err):
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case b.Attempts > 0 && attempt >= b.Attempts:
			return err
		}
		if b.OnRetry != nil {
			b.OnRetry(attempt, err, wait)
		}
		sleep := b.Wait
		if sleep == nil {
			sleep = timerWait
		}
		if werr := sleep(ctx, wait); werr != nil {
			return fmt.Errorf("%w (gave up: %w)", err, werr)
		}
		wait = b.next(wait)
	}
}

// timerWait waits d on a timer, or until ctx ends.
func timerWait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
