package lagmon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/describegroups"

	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// brokerReader is every read a poll makes of Kafka, in the order it makes
// them. kafkaReader is the real one; unit tests fake it to inject failed
// and racing reads. A poll that cannot read something reports it unknown
// (null with a reason), never 0.
type brokerReader interface {
	// ListGroups lists the broker's consumer groups.
	ListGroups(ctx context.Context) ([]string, error)
	// Committed returns a group's committed offsets by topic and partition
	// (offset -1: none); a partition answered with an error carries it.
	Committed(ctx context.Context, group string) (map[string]map[int]committedOffset, error)
	// DescribeGroups returns the state and members of the groups the broker
	// answered.
	DescribeGroups(ctx context.Context, groups []string) (map[string]groupInfo, error)
	// Metadata returns partitions and leaders, uncached; topics the broker
	// does not know are absent, topics answered with another error carry it.
	Metadata(ctx context.Context, topics []string) (map[string]kafkawire.TopicMeta, error)
	// ListOffsets asks a partition leader for offsets, as kafkawire does.
	ListOffsets(ctx context.Context, leader, topic string, partitions []int, which int64, readCommitted bool) (map[int]int64, map[int]error, error)
	// Fetch reads records, as kafkawire does: READ_COMMITTED (up to the
	// last stable offset, aborted transactions listed) or READ_UNCOMMITTED.
	Fetch(ctx context.Context, leader, topic string, partition int, offset int64, maxBytes int32, readCommitted bool) (*kafkawire.Partition, error)
}

// committedOffset is one partition of an OffsetFetch answer.
type committedOffset struct {
	offset int64 // -1: never committed
	err    error
}

// groupInfo is what DescribeGroups says about one group.
type groupInfo struct {
	state        string
	protocolType string // "consumer" for consumer groups; "" for groups that only commit
	members      []GroupMember
	topics       []string // assigned to its members or subscribed by them
	// err: the broker answered the group with an error, or a member's
	// subscription or assignment could not be decoded (its topics may be
	// missing from topics).
	err error
}

// kafkaReader reads group data with kafka-go and metadata, offsets and
// records with kafkawire (uncached, from the partition leaders).
type kafkaReader struct {
	brokers func() []string
	client  *kafka.Client
	fetcher *kafkawire.Fetcher
	// decodeError counts a member's subscription or assignment that could
	// not be decoded (hourglass_lagmon_group_decode_errors_total).
	decodeError func(kind string)
}

func (r *kafkaReader) ListGroups(ctx context.Context) ([]string, error) {
	res, err := r.client.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	if res.Error != nil {
		return nil, fmt.Errorf("list groups: %w", res.Error)
	}
	out := make([]string, 0, len(res.Groups))
	for _, g := range res.Groups {
		out = append(out, g.GroupID)
	}
	return out, nil
}

func (r *kafkaReader) Committed(ctx context.Context, group string) (map[string]map[int]committedOffset, error) {
	res, err := r.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group})
	if err != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, err)
	}
	if res.Error != nil {
		return nil, fmt.Errorf("committed offsets of %s: %w", group, res.Error)
	}
	out := map[string]map[int]committedOffset{}
	for topic, parts := range res.Topics {
		out[topic] = map[int]committedOffset{}
		for _, p := range parts {
			out[topic][p.Partition] = committedOffset{offset: p.CommittedOffset, err: p.Error}
		}
	}
	return out, nil
}

// DescribeGroups asks each group's coordinator (kafka-go routes the request
// there) and decodes the members' subscriptions and assignments with
// kafkawire: kafka-go's own decoding knows only consumer-protocol versions
// 0–1, while Kafka 2.4+ clients, librdkafka and franz-go send 1–3, and it
// drops the whole group on a failure. Members whose bytes cannot be decoded
// are kept (with their error), and the group carries the error.
func (r *kafkaReader) DescribeGroups(ctx context.Context, groups []string) (map[string]groupInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, r.client.Timeout)
	defer cancel()
	tr := r.client.Transport
	if tr == nil {
		tr = kafka.DefaultTransport
	}
	msg, err := tr.RoundTrip(ctx, r.client.Addr, &describegroups.Request{Groups: groups})
	if err != nil {
		return nil, fmt.Errorf("describe groups: %w", err)
	}
	res, ok := msg.(*describegroups.Response)
	if !ok {
		return nil, fmt.Errorf("describe groups: unexpected answer %T", msg)
	}
	out := map[string]groupInfo{}
	for _, d := range res.Groups {
		switch {
		case kafka.Error(d.ErrorCode) == kafka.GroupIdNotFound:
			// No such classic group: it only commits, or does not exist (the
			// same as the state "Dead" older coordinators answer).
			out[d.GroupID] = groupInfo{state: "Dead", members: []GroupMember{}}
			continue
		case d.ErrorCode != 0:
			out[d.GroupID] = groupInfo{err: fmt.Errorf("describe group %s: %w", d.GroupID, kafka.Error(d.ErrorCode))}
			continue
		}
		out[d.GroupID] = decodeGroup(d, r.decodeError)
	}
	return out, nil
}

// decodeGroup turns one DescribeGroups answer into a groupInfo; failed
// counts each member whose subscription or assignment could not be decoded.
func decodeGroup(d describegroups.ResponseGroup, failed func(kind string)) groupInfo {
	gi := groupInfo{state: d.GroupState, protocolType: d.ProtocolType, members: []GroupMember{}}
	add := func(t string) {
		if t != "" && !slices.Contains(gi.topics, t) {
			gi.topics = append(gi.topics, t)
		}
	}
	var errs []error
	for _, mem := range d.Members {
		gm := GroupMember{MemberID: mem.MemberID, InstanceID: mem.GroupInstanceID, ClientID: mem.ClientID,
			ClientHost: mem.ClientHost, Subscribed: []string{}, Assigned: map[string][]int32{}}
		if d.ProtocolType == "consumer" {
			// Subscriptions count too: a member that joined before its topic
			// existed is assigned nothing, but the topic is its work.
			sub, err := kafkawire.DecodeSubscription(mem.MemberMetadata)
			if err != nil {
				failed("subscription")
				err = fmt.Errorf("member %s (client %s) of %s: %w", mem.MemberID, mem.ClientID, d.GroupID, err)
				errs = append(errs, err)
				gm.Error = err.Error()
			}
			for _, t := range sub.Topics {
				gm.Subscribed = append(gm.Subscribed, t)
				add(t)
			}
			as, err := kafkawire.DecodeAssignment(mem.MemberAssignment)
			if err != nil {
				failed("assignment")
				err = fmt.Errorf("member %s (client %s) of %s: %w", mem.MemberID, mem.ClientID, d.GroupID, err)
				errs = append(errs, err)
				gm.Error = err.Error()
			}
			for _, tp := range as.Partitions {
				gm.Assigned[tp.Topic] = append(gm.Assigned[tp.Topic], tp.Partitions...)
				add(tp.Topic)
			}
		}
		gi.members = append(gi.members, gm)
	}
	gi.err = errors.Join(errs...)
	return gi
}

// Metadata asks the bootstrap brokers in turn (uncached, never auto-creating).
func (r *kafkaReader) Metadata(ctx context.Context, topics []string) (map[string]kafkawire.TopicMeta, error) {
	var errs []error
	for _, b := range r.brokers() {
		meta, err := r.fetcher.Metadata(ctx, b, topics)
		if err == nil {
			return meta, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("metadata: %w", errors.Join(errs...))
}

func (r *kafkaReader) ListOffsets(ctx context.Context, leader, topic string, partitions []int, which int64, readCommitted bool) (map[int]int64, map[int]error, error) {
	return r.fetcher.ListOffsets(ctx, leader, topic, partitions, which, readCommitted)
}

func (r *kafkaReader) Fetch(ctx context.Context, leader, topic string, partition int, offset int64, maxBytes int32, readCommitted bool) (*kafkawire.Partition, error) {
	return r.fetcher.FetchIsolation(ctx, leader, topic, partition, offset, maxBytes, readCommitted)
}

// groupSpec is one group to watch.
type groupSpec struct {
	name, source, metric string
	topics               []string // topics it must consume (catalog); more come from its commits and members
	sla                  time.Duration
	reset                status.Reset // where it starts on a partition it never committed
	isolation            Isolation    // how it reads transactional topics
}

// watchedGroups lists the catalog's groups and the broker's groups the
// patterns allow, minus the denied ones, in name order. When the broker's
// list cannot be read, the groups it listed last time are kept (reported
// unknown rather than dropped) and the error is returned with them.
func (m *Monitor) watchedGroups(ctx context.Context, st *state) ([]groupSpec, error) {
	specs := map[string]groupSpec{}
	if st.cat != nil {
		for _, g := range []string{topology.RouterGroup, topology.ArchiverGroup, topology.IndexerGroup} {
			specs[g] = groupSpec{name: g, source: "catalog", topics: []string{topology.RawTopic}, sla: st.cfg.SLA}
		}
		for _, tp := range st.cat.Topics() {
			sla := st.cfg.SLA
			if mt, ok := st.cat.Metric(tp.Metric); ok && mt.FreshnessSLA.Duration > 0 {
				sla = mt.FreshnessSLA.Duration
			}
			specs[tp.ConsumerGroup] = groupSpec{name: tp.ConsumerGroup, source: "catalog", metric: tp.Metric, topics: []string{tp.Topic}, sla: sla}
		}
	}
	var listErr error
	if len(st.filter.allow) > 0 {
		listed, err := m.reads.ListGroups(ctx)
		if err != nil {
			m.readError("groups")
			listErr = err
			listed = m.listed
		} else {
			m.listed = listed
		}
		for _, g := range listed {
			if _, ok := specs[g]; !ok && st.filter.allowed(g) {
				specs[g] = groupSpec{name: g, source: "config", sla: st.cfg.SLA}
			}
		}
	}
	var out []groupSpec
	for _, s := range specs {
		if st.filter.denied(s.name) {
			continue
		}
		if sla, ok := st.filter.sla(s.name); ok {
			s.sla = sla
		}
		s.reset = st.filter.startAt(s.name)
		s.isolation = st.filter.isolationOf(s.name)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b groupSpec) int { return strings.Compare(a.name, b.name) })
	return out, listErr
}

// groupOffsets is what the broker says about one group.
type groupOffsets struct {
	committed map[string]map[int]committedOffset // topic → partition → offset
	info      groupInfo
	err       error // the committed offsets could not be read
}

// topicOffsets is what the broker says about one topic.
type topicOffsets struct {
	partitions                []int
	leaders                   map[int]string
	logStart, end, lastStable map[int]int64
	// unread: partitions whose offsets were not all read, or read
	// inconsistently, this poll (their lag is unknown).
	unread map[int]unreadErr
	// err: the topic's metadata could not be read; its partitions are unknown.
	err error
}

// unreadErr says why an offset is unknown this poll.
type unreadErr struct {
	reason string // ReasonReadError or ReasonInconsistent
	err    error
}

// kafkaReachable records whether the latest metadata read answered.
func (m *Monitor) kafkaReachable(ok bool) {
	if m.metrics != nil {
		v := 0.0
		if ok {
			v = 1
		}
		m.metrics.kafkaUp.Set(v)
	}
}

// readError counts one failed or inconsistent offset read.
func (m *Monitor) readError(kind string) {
	if m.metrics != nil {
		m.metrics.offsetReadErrors.WithLabelValues(kind).Inc()
	}
}

// readGroups fetches committed offsets, then the groups' states. It runs
// before the end offsets are read: end offsets only grow, so an end read
// after a commit is at least that commit, and lag cannot go negative.
func (m *Monitor) readGroups(ctx context.Context, specs []groupSpec) map[string]*groupOffsets {
	out := make(map[string]*groupOffsets, len(specs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, s := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			g := &groupOffsets{}
			g.committed, g.err = m.reads.Committed(ctx, s.name)
			if g.err != nil {
				m.readError("committed")
			}
			for _, parts := range g.committed {
				for _, c := range parts {
					if c.err != nil {
						m.readError("committed")
					}
				}
			}
			mu.Lock()
			out[s.name] = g
			mu.Unlock()
		}()
	}
	wg.Wait()

	if len(specs) == 0 {
		return out
	}
	ids := make([]string, len(specs))
	for i, s := range specs {
		ids[i] = s.name
	}
	infos, err := m.reads.DescribeGroups(ctx, ids)
	if err != nil {
		// Members and their topics as last seen: a group known only by its
		// members must not lose its topics (and look idle) for a poll.
		m.readError("describe")
		m.log.Warn("describe groups failed; members as of the previous poll", "error", err)
		infos = m.described
	}
	for name, g := range out {
		gi, ok := infos[name]
		if ok && gi.err != nil && gi.state == "" {
			// The broker answered this group with an error: its members as
			// last seen, and the error on the group (never silently skipped).
			m.readError("describe")
			m.log.Warn("describe group failed; members as of the previous poll", "group", name, "error", gi.err)
			prev := m.described[name]
			prev.err = gi.err
			gi = prev
		} else if ok && gi.err != nil {
			m.log.Warn("a member's consumer-protocol data could not be decoded; its topics may be missing", "group", name, "error", gi.err)
		}
		g.info = gi
	}
	if err == nil {
		m.described = make(map[string]groupInfo, len(out))
		for name, g := range out {
			m.described[name] = g.info
		}
	}
	return out
}

// readTopics fetches partitions and leaders, then log start, last stable
// and high watermark offsets of topics, in that order: each read is at
// least the one before it, so log start ≤ last stable ≤ end unless a read
// raced or failed. Topics that do not exist are absent; topics whose
// metadata failed carry err; partitions not fully read are in unread.
func (m *Monitor) readTopics(ctx context.Context, topics []string) map[string]*topicOffsets {
	out := map[string]*topicOffsets{}
	if len(topics) == 0 {
		// Nothing to read, but whether Kafka answers is still news
		// (hourglass_lagmon_kafka_up): a metadata request for no topic.
		_, err := m.reads.Metadata(ctx, nil)
		m.kafkaReachable(err == nil)
		return out
	}
	meta, err := m.reads.Metadata(ctx, topics)
	m.kafkaReachable(err == nil)
	if err != nil {
		m.readError("metadata")
		for _, t := range topics {
			out[t] = &topicOffsets{err: err}
		}
		return out
	}
	for _, t := range meta { // deleted or never created topics are absent: not watched this poll
		to := &topicOffsets{leaders: map[int]string{}, logStart: map[int]int64{}, end: map[int]int64{}, lastStable: map[int]int64{},
			unread: map[int]unreadErr{}, err: t.Err}
		if t.Err != nil {
			m.readError("metadata")
			to.err = fmt.Errorf("metadata of %s: %w", t.Name, t.Err)
		}
		for _, p := range t.Partitions {
			to.partitions = append(to.partitions, p.ID)
			to.leaders[p.ID] = p.Leader
		}
		out[t.Name] = to
	}
	// One request per topic, leader and kind, sent to the leader itself.
	type query struct {
		kind          string
		which         int64
		readCommitted bool
		got           func(*topicOffsets) map[int]int64
	}
	queries := []query{
		{"log_start", kafkawire.Earliest, false, func(t *topicOffsets) map[int]int64 { return t.logStart }},
		{"last_stable", kafkawire.Latest, true, func(t *topicOffsets) map[int]int64 { return t.lastStable }},
		{"end", kafkawire.Latest, false, func(t *topicOffsets) map[int]int64 { return t.end }},
	}
	fail := func(to *topicOffsets, p int, kind string, err error) {
		if _, already := to.unread[p]; !already {
			m.readError(kind)
			to.unread[p] = unreadErr{ReasonReadError, err}
		}
	}
	var errs []error
	for name, to := range out {
		if to.err != nil {
			continue
		}
		byLeader := map[string][]int{}
		for _, p := range to.partitions {
			if to.leaders[p] == "" {
				fail(to, p, "metadata", fmt.Errorf("%s/%d has no leader", name, p))
				continue
			}
			byLeader[to.leaders[p]] = append(byLeader[to.leaders[p]], p)
		}
		for leader, parts := range byLeader {
			for _, q := range queries {
				res, failed, err := m.reads.ListOffsets(ctx, leader, name, parts, q.which, q.readCommitted)
				if err != nil {
					errs = append(errs, err)
					for _, p := range parts {
						fail(to, p, q.kind, err)
					}
					continue
				}
				for _, p := range parts {
					o, ok := res[p]
					switch {
					case failed[p] != nil:
						fail(to, p, q.kind, fmt.Errorf("%s of %s/%d: %w", q.kind, name, p, failed[p]))
					case !ok:
						fail(to, p, q.kind, fmt.Errorf("%s of %s/%d: missing from the answer", q.kind, name, p))
					default:
						q.got(to)[p] = o
					}
				}
			}
		}
		for _, p := range to.partitions {
			if _, bad := to.unread[p]; bad {
				continue
			}
			if ls, lso, end := to.logStart[p], to.lastStable[p], to.end[p]; ls > end || lso > end {
				m.readError("inconsistent")
				to.unread[p] = unreadErr{ReasonInconsistent, fmt.Errorf("%s/%d: log start %d, last stable %d, end %d read out of order", name, p, ls, lso, end)}
			}
		}
	}
	if len(errs) > 0 {
		m.log.Warn("some offsets could not be read; those partitions are unknown this poll", "error", errors.Join(errs...))
	}
	return out
}

// tsKey is a record position.
type tsKey struct {
	topic     string
	partition int
	offset    int64
	// uncommitted: the first record at or after offset whatever its
	// transaction's state (the start of an open transaction at the LSO).
	uncommitted bool
}

// tsEntry is what is known from offset on: the timestamp of the first
// record a consumer there reads (found), or that no data record lies in
// [offset, noDataUntil) — only transaction markers and aborted records.
type tsEntry struct {
	ts          time.Time
	found       bool
	noDataUntil int64
	usedPoll    uint64
	// prefetched: read by prefetchTimes this poll and not looked up yet (the
	// first look-up counts as the fetch).
	prefetched bool
}

// recordTime returns the timestamp of the first record a READ_COMMITTED
// consumer positioned at offset reads (skipping transaction markers and
// aborted records), and found=false when there is none before the last
// stable offset: only control records and aborted records lie in between,
// which is no work (the consumer is caught up). Both answers are cached: the
// records at an offset never change, so a later poll only reads what the
// last stable offset has added since.
func (m *Monitor) recordTime(ctx context.Context, leader, topic string, partition int, offset, lastStable int64, poll uint64) (time.Time, bool, error) {
	key := tsKey{topic: topic, partition: partition, offset: offset}
	m.tsMu.Lock()
	e, ok := m.tsCache[key]
	if ok {
		upd := e
		upd.usedPoll, upd.prefetched = poll, false // a prefetched entry counts as fetched once, below
		m.tsCache[key] = upd
	}
	m.tsMu.Unlock()
	hit := "cached"
	if ok && e.prefetched {
		hit = "fetched" // by prefetchTimes, for this look-up
	}
	pos := offset
	if ok {
		if e.found {
			m.metrics.tsFetches.WithLabelValues(hit).Inc()
			return e.ts, true, nil
		}
		if e.noDataUntil >= lastStable {
			m.metrics.tsFetches.WithLabelValues(hit).Inc()
			return time.Time{}, false, nil
		}
		if e.prefetched {
			m.metrics.tsFetches.WithLabelValues(hit).Inc()
		}
		pos = max(pos, e.noDataUntil)
	}
	store := func(e tsEntry) {
		e.usedPoll = poll
		m.tsMu.Lock()
		m.tsCache[key] = e
		m.tsMu.Unlock()
	}
	for range 8 {
		fr, err := m.reads.Fetch(ctx, leader, topic, partition, pos, 1<<20, true)
		if err != nil {
			m.metrics.tsFetches.WithLabelValues("error").Inc()
			return time.Time{}, false, err
		}
		m.metrics.tsFetches.WithLabelValues("fetched").Inc()
		recs, next := fr.Visible()
		for _, r := range recs {
			if r.Offset >= offset {
				store(tsEntry{ts: r.Time, found: true})
				return r.Time, true, nil
			}
		}
		stable := min(lastStable, fr.LastStableOffset)
		if next <= pos {
			// No batch at all below a last stable offset past pos: the
			// answer says nothing, and nothing is concluded from it.
			return time.Time{}, false, fmt.Errorf("no records at %d below the last stable offset %d", pos, stable)
		}
		if next >= stable {
			store(tsEntry{noDataUntil: stable}) // only markers or aborted records up to the stable end
			return time.Time{}, false, nil
		}
		pos = next
		store(tsEntry{noDataUntil: pos})
	}
	return time.Time{}, false, errors.New("no readable record within 8 fetches")
}

// openTxnTime returns the timestamp of the first record at or after
// lastStable, read uncommitted: the first record of the oldest open
// transaction. found is false when there is none (the transaction ended).
func (m *Monitor) openTxnTime(ctx context.Context, leader, topic string, partition int, lastStable int64, poll uint64) (time.Time, bool, error) {
	key := tsKey{topic: topic, partition: partition, offset: lastStable, uncommitted: true}
	m.tsMu.Lock()
	e, ok := m.tsCache[key]
	if ok {
		e.usedPoll = poll
		m.tsCache[key] = e
	}
	m.tsMu.Unlock()
	if ok {
		m.metrics.tsFetches.WithLabelValues("cached").Inc()
		return e.ts, true, nil
	}
	fr, err := m.reads.Fetch(ctx, leader, topic, partition, lastStable, 64<<10, false)
	if err != nil {
		m.metrics.tsFetches.WithLabelValues("error").Inc()
		return time.Time{}, false, err
	}
	m.metrics.tsFetches.WithLabelValues("fetched").Inc()
	for _, b := range fr.Batches {
		if b.Control {
			continue
		}
		for _, r := range b.Records {
			if r.Offset >= lastStable {
				m.tsMu.Lock()
				m.tsCache[key] = tsEntry{ts: r.Time, found: true, usedPoll: poll}
				m.tsMu.Unlock()
				return r.Time, true, nil
			}
		}
	}
	return time.Time{}, false, nil
}

// pruneTimestamps forgets cached timestamps not used in this poll.
func (m *Monitor) pruneTimestamps(poll uint64) {
	m.tsMu.Lock()
	defer m.tsMu.Unlock()
	for k, e := range m.tsCache {
		if e.usedPoll != poll {
			delete(m.tsCache, k)
		}
	}
}

// ringKey names one partition of one group.
type ringKey struct {
	group, topic string
	partition    int
}

// unknownRank orders the reasons a group's lag is unknown, the one to name first.
func unknownRank(reason string) int {
	switch reason {
	case ReasonReadError:
		return 4
	case ReasonInconsistent:
		return 3
	case ReasonTimestampReadError:
		return 2
	case ReasonNeverCommitted:
		return 1
	}
	return 0
}

func worse(a, b string) string {
	if unknownRank(b) > unknownRank(a) {
		return b
	}
	return a
}

// unreadPartition is a partition whose offsets this poll could not use.
func unreadPartition(topic string, p int, reason string, err error) PartitionLag {
	pl := PartitionLag{Topic: topic, Partition: p, CommittedUnknownReason: reason, OffsetsUnknownReason: reason,
		LagUnknownReason: reason, TimeLagUnknownReason: reason}
	if err != nil {
		pl.Error = err.Error()
	}
	return pl
}

// pollKafka reads every watched group and computes its status.
// It returns the time of the observation: the moment after the offsets
// were read, against which time lags are computed.
func (m *Monitor) pollKafka(ctx context.Context, st *state, poll uint64) ([]GroupStatus, time.Time, []error) {
	var errs []error
	specs, err := m.watchedGroups(ctx, st)
	if err != nil {
		errs = append(errs, err)
	}
	groups := m.readGroups(ctx, specs) // committed offsets first...
	names := make([]string, 0, len(specs))
	topicSet := map[string]bool{}
	for _, s := range specs {
		names = append(names, s.name)
		g := groups[s.name]
		if g.err != nil {
			errs = append(errs, g.err)
		}
		for _, t := range s.topics {
			topicSet[t] = true
		}
		for t := range g.committed {
			topicSet[t] = true
		}
		for _, t := range g.info.topics {
			topicSet[t] = true
		}
	}
	if m.commits != nil {
		if err := m.commits.update(ctx, m.client, m.reads.Metadata, names); err != nil {
			m.log.Debug("commit times not available; STOP and STALL fall back to offsets only", "error", err)
		}
	}
	topicNames := make([]string, 0, len(topicSet))
	for t := range topicSet {
		topicNames = append(topicNames, t)
	}
	slices.Sort(topicNames)
	topics := m.readTopics(ctx, topicNames) // ...then end offsets
	for _, t := range topicNames {
		if to := topics[t]; to != nil && to.err != nil {
			errs = append(errs, to.err)
		}
	}
	now := m.now()

	params := func(s groupSpec) status.Params {
		return status.Params{Window: st.cfg.Window, SLA: s.sla, Horizon: st.cfg.Horizon, OpenTxnAfter: st.cfg.OpenTxnAfter}
	}
	out := make([]GroupStatus, 0, len(specs))
	groupErrs := make([][]string, 0, len(specs)) // per group: what could not be read beyond its partitions
	seen := map[ringKey]bool{}
	type job struct {
		gi, pi        int
		leader        string
		offset        int64
		lso           int64
		readableIsLSO bool // the group's readable end is the last stable offset
		openTxn       bool // read the age of the open transaction at lso
	}
	var jobs []job
	for _, s := range specs {
		g := groups[s.name]
		gs := GroupStatus{Group: s.name, Source: s.source, Metric: s.metric, State: g.info.state, Members: len(g.info.members),
			MemberList: g.info.members, SLA: Seconds{s.sla, true}, Reset: s.reset, Isolation: s.isolation}
		if gs.MemberList == nil {
			gs.MemberList = []GroupMember{}
		}
		var gErrs []string
		if g.info.err != nil {
			// Members the monitor could not decode (or a group the broker
			// answered with an error): its topics may be incomplete.
			gErrs = append(gErrs, g.info.err.Error())
		}
		owners := map[string]map[int32]GroupMember{}
		for _, mem := range g.info.members {
			for t, ps := range mem.Assigned {
				if owners[t] == nil {
					owners[t] = map[int32]GroupMember{}
				}
				for _, p := range ps {
					owners[t][p] = mem
				}
			}
		}
		if g.err != nil {
			// Committed offsets unknown: every partition seen before is
			// unknown this poll (its earlier samples still count).
			gErrs = append(gErrs, g.err.Error())
			var keys []ringKey
			for k := range m.rings {
				if k.group == s.name {
					keys = append(keys, k)
				}
			}
			slices.SortFunc(keys, func(a, b ringKey) int {
				if c := strings.Compare(a.topic, b.topic); c != 0 {
					return c
				}
				return a.partition - b.partition
			})
			for _, k := range keys {
				gs.Partitions = append(gs.Partitions, unreadPartition(k.topic, k.partition, ReasonReadError, g.err))
			}
			out = append(out, gs)
			groupErrs = append(groupErrs, gErrs)
			continue
		}
		var gTopics []string
		for t := range topicSet {
			if _, ok := topics[t]; !ok {
				continue // does not exist
			}
			_, committed := g.committed[t]
			if committed || slices.Contains(s.topics, t) || slices.Contains(g.info.topics, t) {
				gTopics = append(gTopics, t)
			}
		}
		slices.Sort(gTopics)
		nParts := 0
		for _, t := range gTopics {
			nParts += len(topics[t].partitions)
		}
		gs.Partitions = slices.Grow(gs.Partitions, nParts) // allocated once, not grown
		for _, t := range gTopics {
			to := topics[t]
			if to.err != nil {
				// Partitions unknown: the ones it committed are unread; if it
				// committed none, the group as a whole is unknown.
				var parts []int
				for p := range g.committed[t] {
					parts = append(parts, p)
				}
				slices.Sort(parts)
				for _, p := range parts {
					gs.Partitions = append(gs.Partitions, unreadPartition(t, p, ReasonReadError, to.err))
				}
				if len(parts) == 0 {
					gErrs = append(gErrs, to.err.Error())
				}
				continue
			}
			for _, p := range to.partitions {
				pl := PartitionLag{Topic: t, Partition: p}
				var bad *unreadErr
				co, hasEntry := g.committed[t][p]
				switch {
				case hasEntry && co.err != nil:
					bad = &unreadErr{ReasonReadError, fmt.Errorf("committed offset of %s/%d: %w", t, p, co.err)}
				case hasEntry && co.offset >= 0:
					pl.Committed = Known(co.offset)
				default:
					pl.CommittedUnknownReason = ReasonNeverCommitted
				}
				if u, ok := to.unread[p]; ok && bad == nil {
					bad = &u
				}
				if bad == nil {
					pl.LogStart, pl.End, pl.LastStable = Known(to.logStart[p]), Known(to.end[p]), Known(to.lastStable[p])
					if pl.Committed.Known && pl.Committed.N > pl.End.N {
						// Committed is read before the end, and the end only
						// grows: a commit past it means one of the reads is
						// wrong (a stale leader, a recreated topic).
						m.readError("inconsistent")
						bad = &unreadErr{ReasonInconsistent, fmt.Errorf("%s/%d: committed %d past the end %d", t, p, pl.Committed.N, pl.End.N)}
					}
				}
				if bad != nil {
					committed, why := pl.Committed, pl.CommittedUnknownReason
					pl = unreadPartition(t, p, bad.reason, bad.err)
					switch {
					case committed.Known: // the commit was read; the rest was not
						pl.Committed, pl.CommittedUnknownReason = committed, ""
					case why == ReasonNeverCommitted:
						pl.CommittedUnknownReason = why
					}
				} else {
					// A read_committed group reads up to the last stable
					// offset; the records past it, of open transactions, are
					// not its lag. A commit past the last stable offset shows
					// a group that reads uncommitted records after all.
					readable := pl.End.N
					if s.isolation == ReadCommitted && !(pl.Committed.Known && pl.Committed.N > pl.LastStable.N) {
						readable = pl.LastStable.N
						pl.OpenTxnRecords = pl.End.N - pl.LastStable.N
					}
					pos := int64(-1) // where the group reads next
					switch {
					case pl.Committed.Known:
						pos = max(pl.Committed.N, pl.LogStart.N) // below the log start the consumer resumes there
						pl.Lag = Known(max(0, readable-pl.Committed.N))
					case s.reset == status.Earliest:
						pos = pl.LogStart.N
						pl.Lag = Known(max(0, readable-pl.LogStart.N))
					default:
						pl.LagUnknownReason, pl.TimeLagUnknownReason = ReasonNeverCommitted, ReasonNeverCommitted
					}
					if pos >= 0 {
						pl.TimeLag = Seconds{0, true}
						if pos < pl.LastStable.N {
							jobs = append(jobs, job{gi: len(out), pi: len(gs.Partitions), leader: to.leaders[p], offset: pos, lso: pl.LastStable.N,
								readableIsLSO: readable == pl.LastStable.N})
						}
					}
					if pl.OpenTxnRecords > 0 {
						jobs = append(jobs, job{gi: len(out), pi: len(gs.Partitions), leader: to.leaders[p], offset: pl.LastStable.N, lso: pl.LastStable.N, openTxn: true})
					}
				}
				if mem, ok := owners[t][int32(p)]; ok {
					pl.MemberID, pl.ClientID = mem.MemberID, mem.ClientID
				}
				if pl.CommittedUnknownReason == ReasonNeverCommitted {
					gs.UncommittedPartitions++
				}
				if ts, ok := m.commitTime(s.name, t, p); ok {
					pl.LastCommit = &ts
				}
				gs.Partitions = append(gs.Partitions, pl)
			}
		}
		out = append(out, gs)
		groupErrs = append(groupErrs, gErrs)
	}

	// Time lags: the positions the cache cannot answer read many per request
	// (prefetch.go), then each look-up, concurrently, answered from the
	// cache or read alone.
	if bf, ok := m.reads.(batchFetcher); ok {
		var want []tsWant
		for _, j := range jobs {
			if !j.openTxn {
				pl := &out[j.gi].Partitions[j.pi]
				want = append(want, tsWant{leader: j.leader, key: tsKey{topic: pl.Topic, partition: pl.Partition, offset: j.offset}, lastStable: j.lso})
			}
		}
		m.prefetchTimes(ctx, bf, want, poll)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			pl := &out[j.gi].Partitions[j.pi]
			if j.openTxn {
				ts, found, err := m.openTxnTime(ctx, j.leader, pl.Topic, pl.Partition, j.lso, poll)
				switch {
				case err != nil:
					pl.OpenTxnAgeUnknownReason = ReasonTimestampReadError
					mu.Lock()
					errs = append(errs, fmt.Errorf("open transaction of %s %s/%d: %w", out[j.gi].Group, pl.Topic, pl.Partition, err))
					mu.Unlock()
				case found:
					pl.OpenTxnAge = Seconds{max(0, now.Sub(ts)), true}
				}
				return
			}
			ts, found, err := m.recordTime(ctx, j.leader, pl.Topic, pl.Partition, j.offset, j.lso, poll)
			switch {
			case err != nil:
				pl.TimeLag, pl.TimeLagUnknownReason = Seconds{}, ReasonTimestampReadError
				pl.Error = fmt.Sprintf("read record at %d: %v", j.offset, err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("time lag of %s %s/%d: %w", out[j.gi].Group, pl.Topic, pl.Partition, err))
				mu.Unlock()
			case found:
				pl.TimeLag = Seconds{max(0, now.Sub(ts)), true}
			case j.readableIsLSO:
				// Only transaction markers and aborted records up to the
				// readable end: no work (Kafka's tool counts the markers).
				pl.OnlyControlRecords, pl.Lag = true, Known(0)
			}
		}()
	}
	wg.Wait()
	m.pruneTimestamps(poll)

	// Rings and statuses.
	for gi := range out {
		gs := &out[gi]
		spec := specs[slices.IndexFunc(specs, func(s groupSpec) bool { return s.name == gs.Group })]
		var results []status.Result
		var sum, largest int64
		var timeLag time.Duration
		var lagWhy, timeWhy string
		for pi := range gs.Partitions {
			pl := &gs.Partitions[pi]
			key := ringKey{gs.Group, pl.Topic, pl.Partition}
			seen[key] = true
			ring := m.rings[key]
			var r status.Result
			if pl.OffsetsUnknownReason != "" || pl.LagUnknownReason == ReasonReadError || pl.LagUnknownReason == ReasonInconsistent {
				// Nothing read this poll: no sample, and never OK.
				ring = trimRing(ring, now, st.cfg.Window)
				m.rings[key] = ring
				r = status.Unread(ring, params(spec))
			} else {
				smp := status.Sample{At: now, Committed: pl.Committed.N, HasCommit: pl.Committed.Known, Reset: spec.reset,
					LogStart: pl.LogStart.N, End: pl.End.N, TimeLag: pl.TimeLag.D, TimeLagUnknown: pl.TimeLagUnknownReason == ReasonTimestampReadError,
					LastStable: pl.LastStable.N, ReadCommitted: spec.isolation == ReadCommitted, NoWork: pl.OnlyControlRecords, OpenTxnAge: pl.OpenTxnAge.D}
				if !smp.HasCommit && spec.reset == status.Latest {
					// A latest-starting group's work: records that arrived since
					// the monitor first saw the partition uncommitted.
					b, ok := m.base[key]
					if !ok || smp.End < b {
						b = smp.End
						m.base[key] = b
					}
					smp.Start = b
				} else {
					delete(m.base, key)
				}
				if pl.LastCommit != nil {
					smp.LastCommit = *pl.LastCommit
				}
				if n := len(ring); n > 0 && smp.End < ring[n-1].End {
					ring = nil // the partition was recreated or truncated: start over
				}
				ring = trimRing(append(ring, smp), now, st.cfg.Window)
				m.rings[key] = ring
				r = status.Evaluate(ring, params(spec))
			}
			pl.Status, pl.Conditions, pl.Lost, pl.Forecast = r.Status, r.Conditions, r.Lost, r.Forecast
			results = append(results, r)
			if pl.Lag.Known {
				sum += pl.Lag.N
				largest = max(largest, pl.Lag.N)
			} else {
				gs.UnknownPartitions++
				lagWhy = worse(lagWhy, pl.LagUnknownReason)
			}
			if pl.TimeLag.Known {
				timeLag = max(timeLag, pl.TimeLag.D)
			} else {
				timeWhy = worse(timeWhy, pl.TimeLagUnknownReason)
			}
		}
		if len(groupErrs[gi]) > 0 {
			// Something the group needs could not be read at all.
			gs.Error = strings.Join(groupErrs[gi], "; ")
			lagWhy, timeWhy = worse(lagWhy, ReasonReadError), worse(timeWhy, ReasonReadError)
			results = append(results, status.Unread(nil, params(spec)))
		}
		if lagWhy == "" {
			gs.Lag, gs.MaxLag = Known(sum), Known(largest)
		} else {
			gs.LagUnknownReason = lagWhy
		}
		if timeWhy == "" {
			gs.TimeLag = Seconds{timeLag, true}
		} else {
			gs.TimeLagUnknownReason = timeWhy
		}
		cg := status.Combine(results)
		gs.Status, gs.Conditions, gs.Lost, gs.Forecast = cg.Status, cg.Conditions, cg.Lost, cg.Forecast
		for i := range gs.Partitions { // one JSON type per field: [] when no rule holds
			if gs.Partitions[i].Conditions == nil {
				gs.Partitions[i].Conditions = []status.Status{}
			}
		}
		if gs.Conditions == nil {
			gs.Conditions = []status.Status{}
		}
		if gs.Partitions == nil {
			gs.Partitions = []PartitionLag{}
		}
		if gs.Lag.Known && gs.TimeLag.Known {
			gs.Advice = status.Advise(cg.Forecast, gs.Lag.N, gs.TimeLag.D, spec.sla, gs.Members, len(gs.Partitions))
		}
	}
	for k := range m.rings {
		if !seen[k] {
			delete(m.rings, k) // the group, topic or partition is gone
		}
	}
	for k := range m.base {
		if !seen[k] {
			delete(m.base, k)
		}
	}
	return out, now, errs
}

// commitTime is when group last committed topic/partition, when known.
func (m *Monitor) commitTime(group, topic string, partition int) (time.Time, bool) {
	if m.commits == nil {
		return time.Time{}, false
	}
	return m.commits.lastCommit(group, topic, partition)
}

// trimRing keeps the samples inside the window plus the newest one at or
// before its start (so a rate spans the whole window). It shifts them to
// the front of the ring's own array: a ring allocates only when it grows,
// not every poll (10 000 partitions' rings were 10 000 allocations a poll).
func trimRing(ring []status.Sample, now time.Time, window time.Duration) []status.Sample {
	from := now.Add(-window)
	i := 0
	for i+1 < len(ring) && !ring[i+1].At.After(from) {
		i++
	}
	if i == 0 {
		return ring
	}
	n := copy(ring, ring[i:])
	clear(ring[n:])
	return ring[:n]
}
