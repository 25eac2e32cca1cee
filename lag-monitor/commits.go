package lagmon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"

	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
)

// offsetsTopic is Kafka's internal topic of group offset commits.
const offsetsTopic = "__consumer_offsets"

// commitKey names one committed partition of one group.
type commitKey struct {
	group, topic string
	partition    int
}

// commitTracker follows the commit records of the watched groups in
// __consumer_offsets, to know *when* each partition was last committed:
// OffsetFetch returns only the offset, and telling STALL (the same offset
// committed again) from STOP (no commit at all) needs the time. Each commit
// is a record whose timestamp the coordinator sets to the commit time.
//
// A group's commits are all in partition abs(javaHash(group)) % N. The
// tracker reads those partitions from their log start (the topic is
// compacted, so that is the latest commit per key plus recent history), a
// bounded number of bytes per poll; until a partition has been read up to
// its end, the times of its groups are unknown.
type commitTracker struct {
	fetcher  *kafkawire.Fetcher
	pos      map[int]int64 // next offset to read, per __consumer_offsets partition
	caughtUp map[int]bool
	last     map[commitKey]time.Time
	budget   int // fetches per partition per poll
	n        int // partitions of __consumer_offsets
	// partOf: the __consumer_offsets partition of each group of the latest
	// update (lastCommit runs for every partition of every group each poll;
	// the hash is computed once per group).
	partOf map[string]int
}

func newCommitTracker(f *kafkawire.Fetcher) *commitTracker {
	return &commitTracker{fetcher: f, pos: map[int]int64{}, caughtUp: map[int]bool{}, last: map[commitKey]time.Time{}, budget: 16}
}

// javaStringHash is Java's String.hashCode (over UTF-16 code units).
func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// offsetsPartition is the __consumer_offsets partition of group (Kafka's
// Utils.abs(groupId.hashCode) % partitions).
func offsetsPartition(group string, partitions int) int {
	h := javaStringHash(group)
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return int(h) % partitions
}

// update reads new commit records of the partitions holding groups.
func (t *commitTracker) update(ctx context.Context, client *kafka.Client, metadata func(context.Context, []string) (map[string]kafkawire.TopicMeta, error), groups []string) error {
	meta, err := metadata(ctx, []string{offsetsTopic})
	if err != nil {
		return err
	}
	tm, ok := meta[offsetsTopic]
	if !ok || tm.Err != nil || len(tm.Partitions) == 0 {
		return fmt.Errorf("metadata of %s: topic not available (%v)", offsetsTopic, tm.Err)
	}
	parts := tm.Partitions
	t.n = len(parts)
	leaders := map[int]string{}
	for _, p := range parts {
		leaders[p.ID] = p.Leader
	}
	want := map[int]bool{}
	t.partOf = make(map[string]int, len(groups))
	for _, g := range groups {
		p := offsetsPartition(g, len(parts))
		t.partOf[g] = p
		want[p] = true
	}
	var errs []error
	for p := range want {
		if err := t.read(ctx, client, p, leaders[p]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t *commitTracker) read(ctx context.Context, client *kafka.Client, p int, leader string) error {
	pos, ok := t.pos[p]
	if !ok {
		res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{offsetsTopic: {kafka.FirstOffsetOf(p)}}})
		if err != nil {
			return fmt.Errorf("log start of %s/%d: %w", offsetsTopic, p, err)
		}
		pos = 0
		for _, po := range res.Topics[offsetsTopic] {
			if po.Error != nil {
				return fmt.Errorf("log start of %s/%d: %w", offsetsTopic, p, po.Error)
			}
			pos = po.FirstOffset
		}
	}
	for range t.budget {
		fr, err := t.fetcher.Fetch(ctx, leader, offsetsTopic, p, pos, 4<<20)
		if errors.Is(err, kafka.OffsetOutOfRange) {
			delete(t.pos, p) // compacted or truncated under us: start over
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", offsetsTopic, p, err)
		}
		recs, next := fr.Visible()
		for _, r := range recs {
			t.apply(r)
		}
		if next > pos {
			pos = next
		}
		if pos >= fr.LastStableOffset || next < 0 {
			t.caughtUp[p] = true
			break
		}
	}
	t.pos[p] = pos
	return nil
}

// apply records one __consumer_offsets record: an offset commit (key
// versions 0 and 1) or its tombstone. Group metadata records are skipped.
func (t *commitTracker) apply(r kafkawire.Record) {
	k, ok := parseCommitKey(r.Key)
	if !ok {
		return
	}
	if r.Value == nil {
		delete(t.last, k)
		return
	}
	if r.Time.After(t.last[k]) {
		t.last[k] = r.Time
	}
}

func parseCommitKey(b []byte) (commitKey, bool) {
	if len(b) < 2 {
		return commitKey{}, false
	}
	if v := binary.BigEndian.Uint16(b); v > 1 {
		return commitKey{}, false
	}
	b = b[2:]
	str := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", false
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, true
	}
	g, ok1 := str()
	tp, ok2 := str()
	if !ok1 || !ok2 || len(b) < 4 {
		return commitKey{}, false
	}
	return commitKey{g, tp, int(int32(binary.BigEndian.Uint32(b)))}, true
}

// lastCommit returns when group last committed topic/partition; ok is false
// when unknown (not read yet, or no commit record).
func (t *commitTracker) lastCommit(group, topic string, partition int) (time.Time, bool) {
	if t.n <= 0 {
		return time.Time{}, false
	}
	p, ok := t.partOf[group]
	if !ok {
		p = offsetsPartition(group, t.n)
	}
	if !t.caughtUp[p] {
		return time.Time{}, false
	}
	ts, ok := t.last[commitKey{group, topic, partition}]
	return ts, ok
}
