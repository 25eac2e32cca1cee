package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"

	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// Fluentd tags of the two streams; the aggregator routes them to the Kafka
// topics of the same names (fluentd/aggregator.conf).
const (
	FluentdRawTag = topology.RawTopic // accepted records
	FluentdDLQTag = topology.DLQTopic // rejected records: {tenant, reason, stage, line}
)

// FluentdSinkConfig configures the Fluentd sink.
type FluentdSinkConfig struct {
	Addr      string        // the aggregator's forward input, host:port (default 127.0.0.1:24224)
	Conns     int           // parallel forward connections (default 4)
	Timeout   time.Duration // dial, write and ack-wait timeout of one attempt (default 5s)
	MaxRetry  int           // attempts per record and dials per attempt (default 4)
	RetryWait time.Duration // first reconnect back-off, growing ×1.5 (default 200ms)
}

// FluentdSink forwards entries to a Fluentd aggregator over the forward
// protocol with acks (fluent-logger-golang, RequestAck): accepted records
// under tag hourglass.logs.raw as the record's own fields, rejected ones under
// hourglass.logs.dlq as {tenant, reason, stage, line}. Write returns only once
// the aggregator acked every entry.
//
// fluent-logger-golang in synchronous mode sends one message per Post and
// reads its ack on the same connection, so one client must never be used by
// two goroutines at once (the acks would cross): the sink keeps a pool of
// clients, each used by one Write shard at a time. A client whose connection
// broke reconnects on its next Post; an unacked message is resent with the
// same chunk id, so an aggregator restart may duplicate entries, never lose
// acknowledged ones.
type FluentdSink struct {
	addr    string
	timeout time.Duration
	pool    chan *fluent.Fluent
	all     []*fluent.Fluent

	closeOnce sync.Once
}

// NewFluentdSink creates the sink. An unreachable aggregator is not an error:
// the clients connect on first use, /readyz reports it, and requests get 503
// until it is back.
func NewFluentdSink(cfg FluentdSinkConfig) (*FluentdSink, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:24224"
	}
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = 4
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 200 * time.Millisecond
	}
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("fluentd sink: address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("fluentd sink: address %q: bad port", cfg.Addr)
	}
	s := &FluentdSink{addr: cfg.Addr, timeout: cfg.Timeout, pool: make(chan *fluent.Fluent, cfg.Conns)}
	for range cfg.Conns {
		f, err := fluent.New(fluent.Config{
			FluentHost:   host,
			FluentPort:   port,
			Timeout:      cfg.Timeout, // dial
			WriteTimeout: cfg.Timeout,
			ReadTimeout:  cfg.Timeout, // the ack wait; without it a silent aggregator blocks forever
			RequestAck:   true,
			Async:        false,
			MaxRetry:     cfg.MaxRetry,
			RetryWait:    int(cfg.RetryWait / time.Millisecond),
			MaxRetryWait: int(10 * cfg.RetryWait / time.Millisecond),
		})
		// In synchronous mode New dials once and returns the client even when
		// that dial failed; the client dials again on its next Post.
		if f == nil {
			_ = s.Close()
			return nil, fmt.Errorf("fluentd sink: create client for %s: %w", cfg.Addr, err)
		}
		s.all = append(s.all, f)
		s.pool <- f
	}
	return s, nil
}

// Write forwards entries and returns once every one was acked. It splits a
// large batch over the pooled connections. On error some entries may have
// been delivered: the client's retry may duplicate them, never lose them.
func (s *FluentdSink) Write(ctx context.Context, entries []Entry) error {
	const minShard = 64
	shards := min(cap(s.pool), max(1, len(entries)/minShard))
	size := (len(entries) + shards - 1) / shards
	errs := make([]error, shards)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range shards {
		lo := min(i*size, len(entries))
		hi := min(lo+size, len(entries))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.writeShard(ctx, entries[lo:hi], lo)
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// fluent-logger-golang takes no context; the shards stop at their next
		// entry and their in-flight Post ends within the client's timeouts.
		return fmt.Errorf("fluentd sink: write %d entries to %s: %w", len(entries), s.addr, ctx.Err())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fluentd sink: write %d entries to %s: %w", len(entries), s.addr, err)
	}
	return nil
}

func (s *FluentdSink) writeShard(ctx context.Context, entries []Entry, offset int) error {
	if len(entries) == 0 {
		return nil
	}
	var f *fluent.Fluent
	select {
	case f = <-s.pool:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { s.pool <- f }()
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		tag, tm, rec, err := fluentdMessage(e)
		if err != nil {
			return fmt.Errorf("entry %d: %w", offset+i, err)
		}
		if err := f.PostWithTime(tag, tm, rec); err != nil {
			return fmt.Errorf("entry %d: forward to %s: %w", offset+i, tag, err)
		}
	}
	return nil
}

// fluentdMessage turns an entry into the tag, event time and record map sent
// to Fluentd.
func fluentdMessage(e Entry) (string, time.Time, map[string]any, error) {
	if e.Stream == StreamDLQ {
		return FluentdDLQTag, time.Now(), map[string]any{
			"tenant": e.Tenant,
			"reason": e.Reason,
			"stage":  "ingress",
			"line":   string(e.Value),
		}, nil
	}
	rec, err := recordMap(e.Value)
	if err != nil {
		return "", time.Time{}, nil, err
	}
	tm := time.Now()
	if ts, ok := rec[record.FieldTimestamp].(string); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			tm = t
		}
	}
	return FluentdRawTag, tm, rec, nil
}

// recordMap decodes a canonical record into a map whose integers stay
// integers (json.Number → int64) and other numbers become float64, so the
// aggregator's JSON output has "status":200, never "status":200.0.
func recordMap(value []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("decode canonical record: %w", err)
	}
	for k, v := range rec {
		n, ok := v.(json.Number)
		if !ok {
			continue
		}
		if i, err := n.Int64(); err == nil {
			rec[k] = i
			continue
		}
		f, err := n.Float64()
		if err != nil {
			return nil, fmt.Errorf("decode canonical record: field %s: %w", k, err)
		}
		rec[k] = f
	}
	return rec, nil
}

// Ready reports whether the aggregator accepts TCP connections.
func (s *FluentdSink) Ready(ctx context.Context) error {
	d := net.Dialer{Timeout: s.timeout}
	c, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("fluentd sink: aggregator %s: %w", s.addr, err)
	}
	return c.Close()
}

// Close closes every client. Call it after the last Write returned.
func (s *FluentdSink) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		for _, f := range s.all {
			if err := f.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fluentd sink: close: %w", err)
	}
	return nil
}
