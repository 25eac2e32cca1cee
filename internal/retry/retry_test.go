package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock records the waits asked of it and returns at once; it can end
// the context at the n-th wait, as a shutdown arriving mid-backoff would.
type fakeClock struct {
	waits    []time.Duration
	cancelAt int // 1-based wait that cancels; 0: never
	cancel   context.CancelFunc
}

func (c *fakeClock) wait(ctx context.Context, d time.Duration) error {
	c.waits = append(c.waits, d)
	if c.cancelAt == len(c.waits) {
		c.cancel()
	}
	return context.Cause(ctx)
}

var errBusy = errors.New("busy")

// failing fails the first n calls with err, then succeeds; it counts calls.
func failing(n int, err error, calls *int) func() error {
	return func() error {
		*calls++
		if *calls <= n {
			return err
		}
		return nil
	}
}

func TestDelay(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		b    Backoff
		want []time.Duration // Delay(1), Delay(2), …
	}{
		{"zero value: 100ms doubling to 10s", Backoff{},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second}},
		{"cap", Backoff{Max: 300 * ms}, []time.Duration{100 * ms, 200 * ms, 300 * ms, 300 * ms}},
		{"cap below the first wait", Backoff{Max: 50 * ms}, []time.Duration{50 * ms, 50 * ms}},
		{"factor 1.5 (the Fluentd sink's)", Backoff{Initial: 200 * ms, Max: 2 * time.Second, Factor: 1.5},
			[]time.Duration{200 * ms, 300 * ms, 450 * ms, 675 * ms, 1012500 * time.Microsecond, 1518750 * time.Microsecond, 2 * time.Second}},
		{"no overflow", Backoff{Initial: time.Duration(1) << 61, Max: time.Duration(1<<63 - 1)},
			[]time.Duration{1 << 61, 1 << 62, 1<<63 - 1, 1<<63 - 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range tc.want {
				require.Equal(t, want, tc.b.Delay(i+1), "Delay(%d)", i+1)
			}
		})
	}
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	clock := &fakeClock{}
	type retried struct {
		attempt int
		err     error
		wait    time.Duration
	}
	var seen []retried
	b := Backoff{Max: time.Second, Wait: clock.wait, OnRetry: func(attempt int, err error, wait time.Duration) {
		seen = append(seen, retried{attempt, err, wait})
	}}
	calls := 0
	require.NoError(t, b.Do(context.Background(), failing(5, errBusy, &calls)))
	require.Equal(t, 6, calls)
	ms := time.Millisecond
	require.Equal(t, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second}, clock.waits)
	require.Len(t, seen, 5)
	for i, r := range seen {
		require.Equal(t, retried{i + 1, errBusy, clock.waits[i]}, r, "OnRetry before wait %d", i+1)
	}
}

func TestDoPermanent(t *testing.T) {
	clock := &fakeClock{}
	bad := fmt.Errorf("decode: %w", Permanent(io.ErrUnexpectedEOF))
	calls := 0
	err := Backoff{Wait: clock.wait}.Do(context.Background(), failing(1, bad, &calls))
	require.Same(t, bad, err, "the permanent error, unchanged")
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, 1, calls)
	require.Empty(t, clock.waits)
}

func TestDoAttempts(t *testing.T) {
	clock := &fakeClock{}
	calls := 0
	err := Backoff{Attempts: 3, Wait: clock.wait}.Do(context.Background(), failing(10, errBusy, &calls))
	require.Same(t, errBusy, err, "the last error, unchanged")
	require.Equal(t, 3, calls)
	require.Len(t, clock.waits, 2, "no wait after the last attempt")

	calls = 0
	require.NoError(t, Backoff{Attempts: 3, Wait: clock.wait}.Do(context.Background(), failing(2, errBusy, &calls)))
	require.Equal(t, 3, calls)
}

func TestDoContextEnds(t *testing.T) {
	t.Run("during a wait", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		stop := errors.New("shutdown")
		clock := &fakeClock{cancelAt: 2, cancel: func() { cancel(stop) }}
		calls := 0
		err := Backoff{Wait: clock.wait}.Do(ctx, failing(100, errBusy, &calls))
		require.ErrorIs(t, err, errBusy, "the last attempt's error")
		require.ErrorIs(t, err, stop, "and why the loop gave up")
		require.EqualError(t, err, "busy (gave up: shutdown)")
		require.Equal(t, 2, calls)
	})
	t.Run("during an attempt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		clock := &fakeClock{}
		calls := 0
		err := Backoff{Wait: clock.wait}.Do(ctx, func() error {
			calls++
			cancel()
			return errBusy
		})
		require.ErrorIs(t, err, errBusy)
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, 1, calls)
		require.Empty(t, clock.waits, "no wait once ctx is done")
	})
	t.Run("a permanent error wins", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Backoff{}.Do(ctx, func() error { return Permanent(errBusy) })
		require.True(t, IsPermanent(err))
		require.NotErrorIs(t, err, context.Canceled)
	})
}

// TestDoTimer runs the real timer with short waits: it returns when the
// work succeeds, and a cancelled context ends a long wait at once.
func TestDoTimer(t *testing.T) {
	calls := 0
	require.NoError(t, Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond}.Do(context.Background(), failing(3, errBusy, &calls)))
	require.Equal(t, 4, calls)

	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err := Backoff{Initial: time.Hour, Max: time.Hour, OnRetry: func(int, error, time.Duration) { cancel() }}.
		Do(ctx, failing(100, errBusy, &calls))
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, calls)
}

func TestPermanent(t *testing.T) {
	require.NoError(t, Permanent(nil))
	require.False(t, IsPermanent(nil))
	require.False(t, IsPermanent(errBusy))
	p := Permanent(errBusy)
	require.True(t, IsPermanent(p))
	require.True(t, IsPermanent(fmt.Errorf("index: %w", p)), "seen through wrapping")
	require.Same(t, p, Permanent(p), "marked once")
	require.ErrorIs(t, p, errBusy)
	require.Equal(t, "busy", p.Error())
}

func TestRetryableStatus(t *testing.T) {
	for status, want := range map[int]bool{
		0: true, 429: true, 500: true, 501: true, 502: true, 503: true, 504: true, 599: true, 999: true,
		200: false, 201: false, 400: false, 401: false, 403: false, 404: false, 409: false, 413: false, 428: false, 430: false, 499: false,
	} {
		require.Equal(t, want, RetryableStatus(status), "status %d", status)
	}
}

// The ranges handed to other programs say what RetryableStatus says, for
// every status an HTTP answer can carry.
func TestRetryableStatusesMatchRetryableStatus(t *testing.T) {
	ranges := RetryableStatuses()
	require.Equal(t, []StatusRange{{429, 429}, {500, 999}}, ranges)
	for status := 100; status <= 999; status++ {
		in := false
		for _, r := range ranges {
			in = in || (r.From <= status && status <= r.To)
		}
		require.Equal(t, RetryableStatus(status), in, "status %d", status)
	}
	ranges[0].From = 0
	require.Equal(t, 429, RetryableStatuses()[0].From, "a copy")
}
