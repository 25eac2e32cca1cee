package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/dlq"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/kafkaadmin"
	"github.com/hourglass-io/hourglass/internal/kafkabatch"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/retry"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// Indexer consumes raw records and indexes them into the data stream.
type Indexer struct {
	cfg     Config
	es      *esclient.Client
	log     *slog.Logger
	metrics *metrics
}

// New prepares an indexer; Run starts the work.
func New(cfg Config, es *esclient.Client, log *slog.Logger, reg prometheus.Registerer) (*Indexer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("indexer: config: %w", err)
	}
	if es == nil {
		return nil, errors.New("indexer: no search cluster client")
	}
	return &Indexer{cfg: cfg, es: es, log: log.With("component", "indexer"), metrics: newMetrics(reg)}, nil
}

// Ready reports whether Kafka serves the source topic and the cluster answers.
func (ix *Indexer) Ready(ctx context.Context) error {
	if err := kafkaadmin.TopicReady(ctx, ix.cfg.Brokers, ix.cfg.Topic); err != nil {
		return err
	}
	if _, err := ix.es.Flavor(ctx); err != nil {
		return err
	}
	return nil
}

// Run indexes until ctx is cancelled. A batch's offsets are committed only
// after every one of its documents was acknowledged (or, refused for good,
// sent to the DLQ); the batch in flight at shutdown is finished or left
// uncommitted to be indexed again, without duplicates, after the restart.
func (ix *Indexer) Run(ctx context.Context) error {
	// The source and DLQ topics exist before the group joins: a member that
	// joins before its topic exists is assigned nothing (DESIGN.md, "Fresh
	// start is the test").
	if err := topology.Ensure(ctx, ix.cfg.Brokers, topology.Raw(ix.cfg.Topic), topology.DLQ(ix.cfg.DLQTopic)); err != nil {
		return fmt.Errorf("indexer: %w", err)
	}
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        ix.cfg.Brokers,
		GroupID:        ix.cfg.Group,
		Topic:          ix.cfg.Topic,
		StartOffset:    kafka.FirstOffset,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  ix.cfg.BatchSize,
		CommitInterval: 0,
		SessionTimeout: ix.cfg.SessionTimeout,
		// Partitions added to the source topic later are picked up by a rebalance.
		WatchPartitionChanges: true,
		Logger:                kafka.LoggerFunc(func(string, ...any) {}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			ix.log.Warn("kafka reader", "error", fmt.Sprintf(msg, args...))
		}),
	})
	dlqw := &kafka.Writer{Addr: kafka.TCP(ix.cfg.Brokers...), Topic: ix.cfg.DLQTopic, RequiredAcks: kafka.RequireAll,
		Balancer: &kafka.Murmur2Balancer{}, BatchTimeout: time.Millisecond}
	defer func() {
		if err := reader.Close(); err != nil {
			ix.log.Warn("close reader", "error", err)
		}
		if err := dlqw.Close(); err != nil {
			ix.log.Warn("close DLQ writer", "error", err)
		}
	}()
	ix.log.Info("indexing", "source", ix.cfg.Topic, "group", ix.cfg.Group, "data_stream", ix.cfg.DataStream)
	for {
		batch, err := kafkabatch.Fetch(ctx, reader, ix.cfg.BatchSize, ix.cfg.BatchWait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("indexer: fetch: %w", err)
		}
		if err := ix.index(ctx, batch, dlqw); err != nil {
			if ctx.Err() != nil {
				return nil // not committed: indexed again (as duplicates refused) after restart
			}
			return err
		}
		if err := reader.CommitMessages(ctx, batch...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			ix.log.Warn("commit failed; the batch will be indexed again (its documents as duplicates)", "error", err)
			ix.metrics.commits.WithLabelValues("error").Inc()
			continue
		}
		ix.metrics.commits.WithLabelValues("ok").Inc()
	}
}

// pending is a document still to be acknowledged.
type pending struct {
	item esclient.BulkItem
	msg  kafka.Message
}

// index sends the batch's documents, retrying what failed for a transient
// reason with backoff until ctx ends. 409 (the _id exists) counts as
// indexed. Documents refused for good go to the DLQ once the others are
// acknowledged.
func (ix *Indexer) index(ctx context.Context, batch []kafka.Message, dlqw *kafka.Writer) error {
	start := time.Now()
	ns := ix.cfg.namespace()
	todo := make([]pending, 0, len(batch))
	for _, m := range batch {
		ix.metrics.in.Inc()
		rec, _, err := record.Decode(m.Value)
		if err != nil {
			ix.metrics.skipped.Inc()
			continue
		}
		doc, err := MarshalDoc(NewDoc(&rec, ns, m.Topic, m.Partition, m.Offset))
		if err != nil {
			return fmt.Errorf("indexer: encode document: %w", err)
		}
		todo = append(todo, pending{
			item: esclient.BulkItem{Op: esclient.BulkCreate, ID: DocID(m.Topic, m.Partition, m.Offset), Doc: doc},
			msg:  m,
		})
	}
	var rejected []pending
	b := retry.Backoff{Max: ix.cfg.MaxBackoff, OnRetry: func(_ int, err error, wait time.Duration) {
		ix.metrics.retries.Inc()
		ix.log.Warn("bulk failed; retrying", "error", err, "documents", len(todo), "backoff", wait)
	}}
	err := b.Do(ctx, func() error {
		items := make([]esclient.BulkItem, len(todo))
		for i, p := range todo {
			items[i] = p.item
		}
		res, err := ix.es.Bulk(ctx, ix.cfg.DataStream, items)
		var berr *esclient.BulkError
		if err != nil && !errors.As(err, &berr) {
			// The whole request failed (transport, 429, 5xx, or any other
			// answer): all of it again.
			return err
		}
		var again []pending
		var first esclient.BulkItemResult
		for i, it := range res.Items {
			switch {
			case !it.Failed():
				ix.metrics.indexed.WithLabelValues("created").Inc()
			case it.Status == http.StatusConflict:
				ix.metrics.indexed.WithLabelValues("duplicate").Inc()
			case retry.RetryableStatus(it.Status):
				if len(again) == 0 {
					first = it
				}
				again = append(again, todo[i])
			default:
				rejected = append(rejected, todo[i])
				ix.log.Error("document refused by the cluster; sent to the DLQ", "id", it.ID, "status", it.Status, "error", it.Error)
			}
		}
		todo = again
		if len(todo) > 0 {
			return fmt.Errorf("%d documents refused for a transient reason (first: %d %s)", len(todo), first.Status, first.Error)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := ix.toDLQ(ctx, dlqw, rejected); err != nil {
		return err
	}
	ix.metrics.bulk.Observe(time.Since(start).Seconds())
	return nil
}

// toDLQ sends the documents the cluster refused for good to the DLQ.
func (ix *Indexer) toDLQ(ctx context.Context, w *kafka.Writer, rejected []pending) error {
	if len(rejected) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(rejected))
	now := time.Now()
	for i, p := range rejected {
		msgs[i] = dlq.Refused(p.msg, dlq.StageIndexer, dlq.ReasonIndexRejected, nil, now).Kafka("") // the writer names the topic
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("indexer: write %d refused documents to the DLQ: %w", len(msgs), err)
	}
	ix.metrics.rejected.Add(float64(len(msgs)))
	return nil
}
