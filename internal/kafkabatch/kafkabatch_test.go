package kafkabatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake serves queued messages, then blocks until its context ends, as a
// reader with nothing more to give does. fail, when set, is returned once
// the queue is empty instead of blocking; blocked, when set, hears each
// time it starts to block.
type fake struct {
	queue   []kafka.Message
	fail    error
	calls   int
	blocked chan struct{}
}

func (f *fake) FetchMessage(ctx context.Context) (kafka.Message, error) {
	f.calls++
	if err := ctx.Err(); err != nil {
		return kafka.Message{}, err
	}
	if len(f.queue) > 0 {
		m := f.queue[0]
		f.queue = f.queue[1:]
		return m, nil
	}
	if f.fail != nil {
		return kafka.Message{}, f.fail
	}
	if f.blocked != nil {
		f.blocked <- struct{}{}
	}
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func messages(n int) []kafka.Message {
	out := make([]kafka.Message, n)
	for i := range out {
		out[i] = kafka.Message{Offset: int64(i)}
	}
	return out
}

func offsets(ms []kafka.Message) []int64 {
	var out []int64
	for _, m := range ms {
		out = append(out, m.Offset)
	}
	return out
}

func TestFetch(t *testing.T) {
	ctx := context.Background()
	t.Run("at most size", func(t *testing.T) {
		f := &fake{queue: messages(10)}
		batch, err := Fetch(ctx, f, 4, time.Hour)
		require.NoError(t, err)
		require.Equal(t, []int64{0, 1, 2, 3}, offsets(batch))
		require.Equal(t, 4, f.calls, "nothing fetched beyond the batch")
		batch, err = Fetch(ctx, f, 4, time.Hour)
		require.NoError(t, err)
		require.Equal(t, []int64{4, 5, 6, 7}, offsets(batch), "the next batch goes on where the last ended")
	})
	t.Run("what arrived within the wait", func(t *testing.T) {
		f := &fake{queue: messages(3)}
		batch, err := Fetch(ctx, f, 100, time.Millisecond)
		require.NoError(t, err)
		require.Equal(t, []int64{0, 1, 2}, offsets(batch))
	})
	t.Run("size below one", func(t *testing.T) {
		batch, err := Fetch(ctx, &fake{queue: messages(3)}, 0, time.Hour)
		require.NoError(t, err)
		require.Len(t, batch, 1)
	})
	t.Run("a reader error after the first message", func(t *testing.T) {
		boom := errors.New("boom")
		f := &fake{queue: messages(2), fail: boom}
		batch, err := Fetch(ctx, f, 100, time.Hour)
		require.NoError(t, err, "the gathered messages are returned")
		require.Len(t, batch, 2)
		_, err = Fetch(ctx, f, 100, time.Hour)
		require.ErrorIs(t, err, boom, "and the next Fetch reports the error")
	})
	t.Run("ctx ends while gathering", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		f := &fake{queue: messages(2), blocked: make(chan struct{})}
		type result struct {
			batch []kafka.Message
			err   error
		}
		done := make(chan result)
		go func() {
			batch, err := Fetch(cctx, f, 100, time.Hour)
			done <- result{batch, err}
		}()
		<-f.blocked // both messages taken, an hour left to wait
		cancel()
		r := <-done
		require.NoError(t, r.err)
		require.Equal(t, []int64{0, 1}, offsets(r.batch))
	})
	t.Run("ctx ended before a message", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := Fetch(cctx, &fake{}, 100, time.Hour)
		require.ErrorIs(t, err, context.Canceled)
	})
}
