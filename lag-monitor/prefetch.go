package lagmon

import (
	"context"
	"slices"
	"sync"

	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
)

// batchFetcher is implemented by a brokerReader that can read many
// partitions of one leader in one request (kafkaReader); without it, every
// position is read alone by recordTime.
type batchFetcher interface {
	// FetchMany reads each position READ_COMMITTED, at most one per
	// partition, from their leader in one request: at least the first batch
	// of each when it is not too large. Partitions answered with an error or
	// not answered are absent.
	FetchMany(ctx context.Context, leader string, pos []kafkawire.FetchPos) (map[kafkawire.TopicPartition]*kafkawire.Partition, error)
}

// Limits of one prefetch request: a record's timestamp needs only the batch
// holding it, so a partition gets little room; a larger batch is read alone.
const (
	prefetchPartitions = 128      // partitions per request
	prefetchPartBytes  = 64 << 10 // per partition
	prefetchBytes      = prefetchPartitions * prefetchPartBytes
)

func (r *kafkaReader) FetchMany(ctx context.Context, leader string, pos []kafkawire.FetchPos) (map[kafkawire.TopicPartition]*kafkawire.Partition, error) {
	parts, _, err := r.fetcher.FetchMany(ctx, leader, pos, prefetchPartBytes, prefetchBytes, true)
	return parts, err
}

// prefetchRound is a set of positions in distinct partitions of one leader.
type prefetchRound struct {
	items []prefetchItem
	has   map[kafkawire.TopicPartition]bool
}

// prefetchItem is one look-up and where to read for it: past what the cache
// already says holds no data.
type prefetchItem struct {
	w   tsWant
	pos kafkawire.FetchPos
}

// tsWant is one time-lag look-up of this poll: the first record a
// READ_COMMITTED consumer at key.offset reads, below lastStable.
type tsWant struct {
	leader     string
	key        tsKey
	lastStable int64
}

// prefetchTimes reads the positions of want the cache cannot answer, many
// partitions per request to each leader, and caches what the answers settle,
// by recordTime's rules: the first visible record at or past the position,
// or no data up to where the answer ends. Read one by one they would cost a
// round trip each (10 000 for 10 groups of 1 000 partitions whose consumers
// all moved since the last poll). What an answer does not settle (an error, a
// partition without a complete batch, a stretch of markers longer than the
// answer) recordTime reads alone afterwards, as without prefetching.
func (m *Monitor) prefetchTimes(ctx context.Context, bf batchFetcher, want []tsWant, poll uint64) {
	// Per leader, rounds of distinct partitions (several groups at one
	// position need one read; at different positions, one read each).
	rounds := map[string][]*prefetchRound{}
	queued := map[tsKey]bool{}
	m.tsMu.Lock()
	for _, w := range want {
		if queued[w.key] {
			continue
		}
		queued[w.key] = true
		pos := w.key.offset
		if e, ok := m.tsCache[w.key]; ok {
			if e.found || e.noDataUntil >= w.lastStable {
				continue
			}
			pos = max(pos, e.noDataUntil)
		}
		tp := kafkawire.TopicPartition{Topic: w.key.topic, Partition: w.key.partition}
		rs := rounds[w.leader]
		i := slices.IndexFunc(rs, func(r *prefetchRound) bool { return !r.has[tp] })
		if i < 0 {
			rs = append(rs, &prefetchRound{has: map[kafkawire.TopicPartition]bool{}})
			i = len(rs) - 1
			rounds[w.leader] = rs
		}
		rs[i].has[tp] = true
		rs[i].items = append(rs[i].items, prefetchItem{w, kafkawire.FetchPos{TopicPartition: tp, Offset: pos}})
	}
	m.tsMu.Unlock()

	var wg sync.WaitGroup
	for leader, rs := range rounds {
		wg.Add(1)
		go func() { // one goroutine per leader: its requests share one connection
			defer wg.Done()
			for _, r := range rs {
				for items := r.items; len(items) > 0 && ctx.Err() == nil; {
					chunk := items[:min(len(items), prefetchPartitions)]
					items = items[len(chunk):]
					pos := make([]kafkawire.FetchPos, len(chunk))
					for i, it := range chunk {
						pos[i] = it.pos
					}
					parts, err := bf.FetchMany(ctx, leader, pos)
					if err != nil {
						m.log.Debug("prefetch of record timestamps failed; reading them one by one", "leader", leader, "partitions", len(pos), "error", err)
						continue
					}
					for _, it := range chunk {
						fr, ok := parts[it.pos.TopicPartition]
						if !ok {
							continue
						}
						if e, ok := settle(fr, it.w.key.offset, it.pos.Offset, it.w.lastStable); ok {
							e.usedPoll, e.prefetched = poll, true
							m.tsMu.Lock()
							m.tsCache[it.w.key] = e
							m.tsMu.Unlock()
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}

// settle is what one READ_COMMITTED answer read from pos says of the first
// record at or past offset below lastStable (recordTime's rules): its
// timestamp, or that no data lies up to the readable end or up to where the
// answer ends. ok is false when the answer holds no complete batch.
func settle(fr *kafkawire.Partition, offset, pos, lastStable int64) (tsEntry, bool) {
	recs, next := fr.Visible()
	for _, r := range recs {
		if r.Offset >= offset {
			return tsEntry{ts: r.Time, found: true}, true
		}
	}
	if next <= pos {
		return tsEntry{}, false
	}
	return tsEntry{noDataUntil: min(next, lastStable, fr.LastStableOffset)}, true
}
