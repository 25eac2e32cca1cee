package query

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/topology"
)

// Publisher sends job events to other services. Events of one job must be
// delivered in the order given.
type Publisher interface {
	Publish(ctx context.Context, events []Event) error
}

// EventsTopic is the Kafka topic of job events as the service creates it.
func EventsTopic(name string) topology.Topic {
	if name == "" {
		name = topology.QueryEventsTopic
	}
	return topology.Topic{Name: name, Partitions: 3}
}

// KafkaPublisher writes each event to a topic keyed by job id (so one job's
// events share a partition and keep their order), acks=all.
type KafkaPublisher struct {
	w  *kafka.Writer
	tr *kafka.Transport
}

// NewKafkaPublisher builds a publisher; it opens no connection.
func NewKafkaPublisher(brokers []string, topic string) *KafkaPublisher {
	tr := &kafka.Transport{}
	return &KafkaPublisher{tr: tr, w: &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, Transport: tr}}
}

// Publish writes events and waits for the acknowledgement.
func (p *KafkaPublisher) Publish(ctx context.Context, events []Event) error {
	msgs := make([]kafka.Message, len(events))
	for i, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("query: encode event: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(ev.JobID), Value: b}
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("query: publish %d events to %s: %w", len(events), p.w.Topic, err)
	}
	return nil
}

// Close flushes and closes the writer.
func (p *KafkaPublisher) Close() error {
	err := p.w.Close()
	p.tr.CloseIdleConnections()
	return err
}

// maxPendingEvents bounds the events waiting for the publisher; beyond it
// events are dropped and counted (the job record stays the truth).
const maxPendingEvents = 10_000

// eventPublisher hands events to a Publisher from one goroutine, in order,
// retrying a failed batch.
type eventPublisher struct {
	pub  Publisher
	log  *slog.Logger
	m    *metrics
	ch   chan Event
	done chan struct{}
	once sync.Once
}

func newEventPublisher(pub Publisher, log *slog.Logger, m *metrics) *eventPublisher {
	return &eventPublisher{pub: pub, log: log, m: m, ch: make(chan Event, maxPendingEvents), done: make(chan struct{})}
}

func (p *eventPublisher) start() {
	p.once.Do(func() {
		if p.pub == nil {
			close(p.done)
			return
		}
		go p.loop()
	})
}

func (p *eventPublisher) publish(ev Event) {
	if p.pub == nil {
		return
	}
	select {
	case p.ch <- ev:
	default:
		p.m.eventsDropped.Inc()
	}
}

func (p *eventPublisher) loop() {
	defer close(p.done)
	for ev := range p.ch {
		batch := []Event{ev}
	more:
		for len(batch) < 500 {
			select {
			case ev, ok := <-p.ch:
				if !ok {
					break more
				}
				batch = append(batch, ev)
			default:
				break more
			}
		}
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := p.pub.Publish(ctx, batch)
			cancel()
			if err == nil {
				p.m.eventsPublished.Add(float64(len(batch)))
				break
			}
			if attempt == 4 {
				p.m.eventsDropped.Add(float64(len(batch)))
				p.log.Error("job events dropped after 5 attempts", "events", len(batch), "error", err)
				break
			}
			time.Sleep(time.Duration(200<<attempt) * time.Millisecond)
		}
	}
}

// close flushes the pending events (until ctx ends).
func (p *eventPublisher) close(ctx context.Context) error {
	p.start()
	if p.pub == nil {
		return nil
	}
	close(p.ch)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("query: events not flushed: %w", ctx.Err())
	}
}
