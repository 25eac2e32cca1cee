// Package kafkabatch reads a consumer group's messages in batches: the one
// batching loop of the services that consume the raw topic and handle a
// batch at a time (the router, the indexer), who commit a batch's offsets
// only once all of it is handled.
//
// Its contract: a batch is never empty, never larger than asked, and holds
// every message fetched for it: a message fetched and not handed on would be
// committed past, with the batch after it, and lost.
package kafkabatch

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// Fetcher is what Fetch needs of a reader; *kafka.Reader is one.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
}

// Fetch blocks until one message arrives, then gathers more for up to wait,
// at most size in all (size < 1 counts as 1). It fails only when no message
// arrived: with the reader's error, or ctx's when ctx ended. When ctx ends
// while gathering, Fetch returns what it gathered; the caller sees ctx.Err().
func Fetch(ctx context.Context, r Fetcher, size int, wait time.Duration) ([]kafka.Message, error) {
	first, err := r.FetchMessage(ctx)
	if err != nil {
		return nil, err
	}
	batch := []kafka.Message{first}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(batch) < size {
		m, err := r.FetchMessage(wctx)
		if err != nil {
			break // the wait is over, or ctx ended, or the reader failed: the next Fetch says which
		}
		batch = append(batch, m)
	}
	return batch, nil
}
