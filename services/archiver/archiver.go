package archiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/kafkaadmin"
	"github.com/hourglass-io/hourglass/internal/kafkabatch"
	"github.com/hourglass-io/hourglass/internal/topology"
)

// Archiver consumes the raw records and writes them to the archive.
type Archiver struct {
	cfg     Config
	fs      archive.FS
	log     *slog.Logger
	metrics *metrics
	z       *compressor // shared by the partitions: CompressWorkers bounds the process, not each partition
}

// New prepares an archiver writing to fsys; Run starts the work.
func New(cfg Config, fsys archive.FS, log *slog.Logger, reg prometheus.Registerer) (*Archiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("archiver: config: %w", err)
	}
	if fsys == nil {
		return nil, errors.New("archiver: no archive file system")
	}
	return &Archiver{
		cfg:     cfg,
		fs:      fsys,
		log:     log.With("component", "archiver"),
		metrics: newMetrics(reg),
		z:       newCompressor(cfg.CompressWorkers),
	}, nil
}

// Ready reports whether Kafka serves the source topic and the archive root
// answers.
func (a *Archiver) Ready(ctx context.Context) error {
	if err := kafkaadmin.TopicReady(ctx, a.cfg.Brokers, a.cfg.Topic); err != nil {
		return err
	}
	if _, err := a.fs.Stat(ctx, "."); err != nil {
		return fmt.Errorf("archive %s: %w", a.fs, err)
	}
	return nil
}

// Run archives until ctx is cancelled, then drains: every buffered part file
// is written and renamed and its offsets committed (within DrainTimeout).
// It returns nil on a clean stop.
func (a *Archiver) Run(ctx context.Context) error {
	// The topic exists before the group joins: a member that joins before
	// its topic exists is assigned nothing (DESIGN.md, "Fresh start is the
	// test").
	if err := topology.Ensure(ctx, a.cfg.Brokers, topology.Raw(a.cfg.Topic)); err != nil {
		return fmt.Errorf("archiver: %w", err)
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    a.cfg.Group,
		Brokers:               a.cfg.Brokers,
		Topics:                []string{a.cfg.Topic},
		StartOffset:           kafka.FirstOffset,
		SessionTimeout:        a.cfg.SessionTimeout,
		RebalanceTimeout:      a.cfg.SessionTimeout + a.cfg.DrainTimeout,
		HeartbeatInterval:     3 * time.Second,
		WatchPartitionChanges: true,
		JoinGroupBackoff:      2 * time.Second,
		Logger:                kafka.LoggerFunc(func(string, ...any) {}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			a.log.Warn("kafka consumer group", "error", fmt.Sprintf(msg, args...))
		}),
	})
	if err != nil {
		return fmt.Errorf("archiver: consumer group: %w", err)
	}
	a.log.Info("archiving", "topic", a.cfg.Topic, "group", a.cfg.Group, "archive", a.fs.String(),
		"max_file_bytes", a.cfg.MaxFileBytes, "max_file_age", a.cfg.MaxFileAge, "compress_workers", a.cfg.CompressWorkers)
	var wg sync.WaitGroup
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("consumer group generation failed; rejoining", "error", err)
			continue
		}
		assigned := gen.Assignments[a.cfg.Topic]
		a.log.Info("partitions assigned", "generation", gen.ID, "partitions", len(assigned))
		for _, pa := range assigned {
			wg.Add(1)
			gen.Start(func(genCtx context.Context) {
				defer wg.Done()
				a.metrics.partitions.Inc()
				defer a.metrics.partitions.Dec()
				a.runPartition(ctx, genCtx, gen, pa.ID, pa.Offset)
			})
		}
	}
	wg.Wait() // partitions drain while the generation is still ours
	if err := cg.Close(); err != nil {
		a.log.Warn("close consumer group", "error", err)
	}
	return nil
}

// A partition's records are taken from its reader in batches of at most
// fetchBatch, gathered for at most fetchWait after the first.
const (
	fetchBatch = 1000
	fetchWait  = 5 * time.Millisecond
)

// runPartition archives one partition for one generation. When ctx (the
// service) ends it drains; when only the generation ends (a rebalance) it
// drops what it buffered, uncommitted, for the partition's next owner.
func (a *Archiver) runPartition(ctx, genCtx context.Context, gen *kafka.Generation, partition int, offset int64) {
	log := a.log.With("partition", partition)
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   a.cfg.Brokers,
		Topic:     a.cfg.Topic,
		Partition: partition,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		MaxWait:   250 * time.Millisecond,
		Logger:    kafka.LoggerFunc(func(string, ...any) {}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka reader", "error", fmt.Sprintf(msg, args...))
		}),
	})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		log.Error("set start offset", "offset", offset, "error", err)
		return
	}
	log.Info("archiving partition", "from_offset", offset)

	// work ends with the service or with the generation.
	work, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-genCtx.Done():
			stop()
		case <-work.Done():
		}
	}()

	w := newPartWriter(a.fs, partition, a.cfg, a.log, a.metrics, a.z)
	committed := offset
	commit := func() {
		off := w.commitOffset()
		if off < 0 || off <= committed {
			return
		}
		if err := gen.CommitOffsets(map[string]map[int]int64{a.cfg.Topic: {partition: off}}); err != nil {
			a.metrics.commits.WithLabelValues("error").Inc()
			log.Warn("commit failed; the records after the last commit are reconciled by the next owner", "offset", off, "error", err)
			return
		}
		a.metrics.commits.WithLabelValues("ok").Inc()
		committed = off
	}

	tick := min(a.cfg.MaxFileAge/4, time.Second)
	for work.Err() == nil {
		// Records come in batches of what the reader holds: the timers, the
		// flush check and the commit are paid per batch, not per record
		// (they were a fifth of the archiver's CPU). The tick bounds the
		// wait, so a quiet partition's files are still flushed when due.
		fctx, cancel := context.WithTimeout(work, tick)
		batch, err := kafkabatch.Fetch(fctx, r, fetchBatch, fetchWait)
		cancel()
		switch {
		case err == nil:
			now := time.Now()
			for _, m := range batch {
				if err := w.add(work, m.Offset, m.Value, topology.IsCanonical(m.Headers), now); err != nil {
					log.Debug("add interrupted", "error", err)
					break
				}
			}
		case work.Err() != nil:
		case errors.Is(err, context.DeadlineExceeded):
		default:
			log.Warn("fetch failed; retrying", "error", err)
		}
		if work.Err() == nil {
			if err := w.flushDue(work, time.Now()); err != nil {
				log.Debug("flush interrupted", "error", err)
			}
			commit()
		}
	}

	if ctx.Err() == nil { // the generation ended: a rebalance or a lost session
		w.abort()
		log.Info("partition revoked; buffered records left to the next owner")
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.DrainTimeout)
	defer cancel()
	if err := w.flushAll(dctx); err != nil {
		log.Warn("drain incomplete; unflushed records stay uncommitted and are archived after the restart", "error", err)
	}
	commit()
	w.abort()
	log.Info("partition drained", "committed", committed)
}
