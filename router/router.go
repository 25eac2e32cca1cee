package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/dlq"
	"github.com/hourglass-io/hourglass/internal/kafkaadmin"
	"github.com/hourglass-io/hourglass/internal/kafkabatch"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/retry"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// Router consumes raw records and fans them out per the catalog.
type Router struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	routes  atomic.Pointer[[]catalog.Route]
	reader  *kafka.Reader
	writer  *kafka.Writer
	reload  chan struct{}
}

// New loads the catalog and prepares the Kafka clients; Run starts the work.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("router: config: %w", err)
	}
	c, err := catalog.Load(cfg.CatalogPath)
	if err == nil {
		err = checkLateness(c, cfg.TimeBounds)
	}
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	r := &Router{
		cfg:     cfg,
		log:     log.With("component", "router"),
		metrics: newMetrics(reg),
		reload:  make(chan struct{}, 1),
	}
	routes := c.Routes()
	r.routes.Store(&routes)
	r.metrics.routes.Set(float64(len(routes)))
	return r, nil
}

// Reload asks the router to reload its catalog (main calls it on SIGHUP).
func (r *Router) Reload() {
	select {
	case r.reload <- struct{}{}:
	default: // one pending reload is enough
	}
}

// Ready reports whether Kafka answers for the source topic.
func (r *Router) Ready(ctx context.Context) error {
	return kafkaadmin.TopicReady(ctx, r.cfg.Brokers, r.cfg.SourceTopic)
}

// Run routes until ctx is cancelled. It returns nil on a clean stop: the
// batch in flight is either fully acknowledged and committed, or left
// uncommitted to be routed again after a restart.
func (r *Router) Run(ctx context.Context) error {
	routes := *r.routes.Load()
	if err := r.ensureTopics(ctx, routes, true); err != nil {
		return err
	}
	r.reader = kafka.NewReader(kafka.ReaderConfig{
		Brokers:        r.cfg.Brokers,
		GroupID:        r.cfg.Group,
		Topic:          r.cfg.SourceTopic,
		StartOffset:    kafka.FirstOffset,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        250 * time.Millisecond,
		QueueCapacity:  r.cfg.BatchSize,
		CommitInterval: 0, // synchronous commits, after the batch is acknowledged
		SessionTimeout: r.cfg.SessionTimeout,
		// Partitions added to the source topic later are picked up by a rebalance.
		WatchPartitionChanges: true,
		Logger:                kafka.LoggerFunc(func(string, ...any) {}),
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { r.log.Warn("kafka reader", "error", fmt.Sprintf(msg, args...)) }),
	})
	r.writer = &kafka.Writer{
		Addr:         kafka.TCP(r.cfg.Brokers...),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    r.cfg.BatchSize,
		BatchBytes:   16 << 20,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  3,
		Compression:  kafka.Lz4,
	}
	defer func() {
		if err := r.reader.Close(); err != nil {
			r.log.Warn("close reader", "error", err)
		}
		if err := r.writer.Close(); err != nil {
			r.log.Warn("close writer", "error", err)
		}
	}()

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go r.watchCatalog(watchCtx)

	r.log.Info("routing", "source", r.cfg.SourceTopic, "group", r.cfg.Group, "metrics", len(routes))
	return r.pipeline(ctx)
}

// pipeline overlaps the work of consecutive batches: while one batch's
// records are produced (acks=all) and then committed, the next is fetched,
// decoded and fanned out. Delivery (produce, then commit) stays strictly in
// fetch order on one goroutine, so a commit never passes a batch that is not
// acknowledged; at most two batches are held besides the one being fetched.
func (r *Router) pipeline(ctx context.Context) error {
	ready := make(chan routed, 1) // the next batch, waiting for the one in delivery
	fetchCtx, stopFetching := context.WithCancel(ctx)
	defer stopFetching()
	var derr error // delivery's error, read after done
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range ready {
			if derr = r.deliverInTime(ctx, b); derr != nil {
				stopFetching()
				for range ready { // dropped: uncommitted, routed again after a restart
				}
				return
			}
		}
	}()
	err := r.fetchAndRoute(fetchCtx, ready)
	close(ready)
	<-done
	if derr != nil {
		return derr
	}
	return err
}

// fetchAndRoute fetches batches and hands them, routed, to delivery until
// ctx ends (the service stops, or delivery failed).
func (r *Router) fetchAndRoute(ctx context.Context, ready chan<- routed) error {
	for {
		batch, err := kafkabatch.Fetch(ctx, r.reader, r.cfg.BatchSize, r.cfg.BatchWait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("router: fetch: %w", err)
		}
		select {
		case ready <- r.routeBatch(batch):
		case <-ctx.Done():
			return nil // a fetched batch not handed over: uncommitted, routed again
		}
	}
}

// deliverInTime delivers a batch. Once fetched, a batch is finished even if
// shutdown begins: its production and commit run on a context that outlives
// ctx by at most DrainTimeout. Only a batch that cannot finish within it is
// left uncommitted (and may be routed again after the restart).
func (r *Router) deliverInTime(ctx context.Context, b routed) error {
	bctx, cancel := drainContext(ctx, r.cfg.DrainTimeout)
	defer cancel()
	if err := r.deliver(bctx, b); err != nil {
		if bctx.Err() != nil {
			r.log.Warn("shutdown: batch abandoned uncommitted after the drain timeout", "records", len(b.batch), "error", err)
			return nil
		}
		return err
	}
	return nil
}

// drainContext is a context that is not cancelled with parent but ends
// drain after parent ends.
func drainContext(parent context.Context, drain time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(drain, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}

// routed is a fetched batch with its fan-out and DLQ records and its counts.
type routed struct {
	batch     []kafka.Message
	out       []kafka.Message
	metrics   []string // route i's metric, for the counts below
	perMetric []int
	filtered  []int // valid records each metric's filter left out
	dlqs      map[dlq.Reason]int
}

// routeBatch decodes a batch and computes its fan-out and DLQ records, with
// the routes of the catalog loaded now. A large batch is split into one
// contiguous chunk per CPU, routed in parallel and joined in order: the
// output is the same, record for record and in the same order, as routing
// it whole (issue 16: routing was the router's bottleneck, on one core).
func (r *Router) routeBatch(batch []kafka.Message) routed {
	routes := *r.routes.Load()
	r.metrics.in.Add(float64(len(batch)))
	r.metrics.batch.Observe(float64(len(batch)))
	now := time.Now()

	chunks := min(runtime.GOMAXPROCS(0), len(batch)/minChunk)
	if chunks <= 1 {
		b := r.routeChunk(routes, batch, now)
		b.batch = batch
		return b
	}
	parts := make([]routed, chunks)
	var wg sync.WaitGroup
	for i := range chunks {
		lo, hi := i*len(batch)/chunks, (i+1)*len(batch)/chunks
		wg.Go(func() { parts[i] = r.routeChunk(routes, batch[lo:hi], now) })
	}
	wg.Wait()
	b := parts[0]
	b.batch = batch
	for _, p := range parts[1:] {
		b.out = append(b.out, p.out...)
		for i := range routes {
			b.perMetric[i] += p.perMetric[i]
			b.filtered[i] += p.filtered[i]
		}
		for reason, n := range p.dlqs {
			b.dlqs[reason] += n
		}
	}
	return b
}

// minChunk is the fewest records worth a goroutine of their own.
const minChunk = 256

// routeChunk routes consecutive records of a batch (all but batch, which
// the caller sets).
func (r *Router) routeChunk(routes []catalog.Route, msgs []kafka.Message, now time.Time) routed {
	b := routed{out: make([]kafka.Message, 0, len(msgs)*len(routes)), metrics: make([]string, len(routes)),
		perMetric: make([]int, len(routes)), filtered: make([]int, len(routes)), dlqs: map[dlq.Reason]int{}}
	for i := range routes {
		b.metrics[i] = routes[i].Metric
	}
	var unknownFields int
	// The projected values of the chunk share one buffer, and each tenant's
	// key one slice: a handful of allocations per chunk instead of one per
	// output record (the garbage collector was a fifth of the router's CPU).
	arena := make([]byte, 0, len(msgs)*len(routes)*64)
	keys := map[string][]byte{}
	for _, m := range msgs {
		decode := record.Decode
		if topology.IsCanonical(m.Headers) {
			decode = record.DecodeCanonical // ingress wrote it: no well-formedness pass
		}
		rec, unknown, err := decode(m.Value)
		unknownFields += len(unknown)
		if err == nil {
			// Bounded against the time Kafka stamped the record, not the
			// router's clock: a replay decides exactly as the first pass.
			err = r.cfg.TimeBounds.Check(rec.Timestamp, m.Time)
		}
		if err != nil {
			reason := dlq.ReasonOf(err)
			b.dlqs[reason]++
			b.out = append(b.out, dlq.Refused(m, dlq.StageRouter, reason, err, now).Kafka(r.cfg.DLQTopic))
			continue
		}
		key, ok := keys[rec.Tenant]
		if !ok {
			key = []byte(rec.Tenant)
			keys[rec.Tenant] = key
		}
		for i := range routes {
			rt := &routes[i]
			if rt.Match(&rec) {
				b.perMetric[i]++
				start := len(arena)
				arena = rt.Project(arena, &rec)
				b.out = append(b.out, kafka.Message{Topic: rt.Topic, Key: key, Value: arena[start:len(arena):len(arena)]})
			} else {
				b.filtered[i]++
			}
		}
	}
	r.metrics.unknownFields.Add(float64(unknownFields))
	return b
}

// deliver produces a routed batch's records, then commits the batch.
func (r *Router) deliver(ctx context.Context, b routed) error {
	start := time.Now()
	if err := r.produce(ctx, b.out); err != nil {
		return err
	}
	r.metrics.produce.Observe(time.Since(start).Seconds())
	for i, n := range b.perMetric {
		if n > 0 {
			r.metrics.out.WithLabelValues(b.metrics[i]).Add(float64(n))
		}
	}
	for i, n := range b.filtered {
		if n > 0 {
			r.metrics.filtered.WithLabelValues(b.metrics[i]).Add(float64(n))
		}
	}
	for reason, n := range b.dlqs {
		r.metrics.dlq.WithLabelValues(string(reason)).Add(float64(n))
	}
	if err := r.reader.CommitMessages(ctx, b.batch...); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A rebalance moved the partition: its new owner routes the batch again.
		r.log.Warn("commit failed; the batch will be routed again", "error", err, "records", len(b.batch))
	}
	return nil
}

// produce writes msgs with acks=all, retrying what failed with backoff until
// every message is acknowledged or ctx is done. Retried messages may be
// written twice; none is skipped.
func (r *Router) produce(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	b := retry.Backoff{OnRetry: func(_ int, err error, wait time.Duration) {
		r.metrics.retries.Inc()
		r.log.Warn("produce failed; retrying", "error", err, "records", len(msgs), "backoff", wait)
	}}
	return b.Do(ctx, func() error {
		err := r.writer.WriteMessages(ctx, msgs...)
		var werrs kafka.WriteErrors
		if err != nil && ctx.Err() == nil && errors.As(err, &werrs) && len(werrs) == len(msgs) {
			failed := msgs[:0:0]
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, msgs[i])
				}
			}
			msgs = failed
			if len(msgs) == 0 {
				return nil
			}
		}
		return err
	})
}

// ensureTopics creates missing metric topics (and, at start, the DLQ topic)
// with the catalog's partition counts. Existing topics are left as they are.
func (r *Router) ensureTopics(ctx context.Context, routes []catalog.Route, withDLQ bool) error {
	var topics []topology.Topic
	for _, rt := range routes {
		topics = append(topics, topology.Topic{Name: rt.Topic, Partitions: rt.Partitions})
	}
	if withDLQ {
		// At start: the source topic too, so the group cannot join before it exists.
		topics = append(topics, topology.DLQ(r.cfg.DLQTopic), topology.Raw(r.cfg.SourceTopic))
	}
	if err := topology.Ensure(ctx, r.cfg.Brokers, topics...); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	return nil
}
