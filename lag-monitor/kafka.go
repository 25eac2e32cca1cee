package lagmon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hourglass-io/hourglass/internal/topology"
	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// groupSpec is one group to watch.
type groupSpec struct {
	name, source, metric string
	topics               []string // topics it must consume (catalog); more come from its commits
	sla                  time.Duration
}

// watchedGroups lists the catalog's groups and the broker's groups the
// patterns allow, minus the denied ones, in name order.
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
	if len(st.filter.allow) > 0 {
		res, err := m.client.ListGroups(ctx, &kafka.ListGroupsRequest{})
		if err != nil {
			return nil, fmt.Errorf("list groups: %w", err)
		}
		if res.Error != nil {
			return nil, fmt.Errorf("list groups: %w", res.Error)
		}
		for _, g := range res.Groups {
			if _, ok := specs[g.GroupID]; !ok && st.filter.allowed(g.GroupID) {
				specs[g.GroupID] = groupSpec{name: g.GroupID, source: "config", sla: st.cfg.SLA}
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
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b groupSpec) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	return out, nil
}

// groupOffsets is what the broker says about one group.
type groupOffsets struct {
	committed map[string]map[int]int64 // topic → partition → offset (-1: none)
	state     string
	members   int
	assigned  []string // topics assigned to members
	err       error
}

// topicOffsets is what the broker says about one topic.
type topicOffsets struct {
	partitions                []int
	leaders                   map[int]string
	logStart, end, lastStable map[int]int64
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
			g := &groupOffsets{committed: map[string]map[int]int64{}}
			res, err := m.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: s.name})
			switch {
			case err != nil:
				g.err = fmt.Errorf("committed offsets of %s: %w", s.name, err)
			case res.Error != nil:
				g.err = fmt.Errorf("committed offsets of %s: %w", s.name, res.Error)
			default:
				for topic, parts := range res.Topics {
					for _, p := range parts {
						if p.Error != nil {
							continue
						}
						if g.committed[topic] == nil {
							g.committed[topic] = map[int]int64{}
						}
						g.committed[topic][p.Partition] = p.CommittedOffset
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
	res, err := m.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: ids})
	if err != nil {
		m.log.Warn("describe groups failed; member counts unknown this poll", "error", err)
		return out
	}
	for _, d := range res.Groups {
		g := out[d.GroupID]
		if g == nil || d.Error != nil {
			continue
		}
		g.state, g.members = d.GroupState, len(d.Members)
		for _, mem := range d.Members {
			for _, t := range mem.MemberAssignments.Topics {
				if !slices.Contains(g.assigned, t.Topic) {
					g.assigned = append(g.assigned, t.Topic)
				}
			}
		}
	}
	return out
}

// readTopics fetches partitions and leaders, then log start, high watermark
// and last stable offsets of topics. Topics that do not exist are absent.
func (m *Monitor) readTopics(ctx context.Context, topics []string) (map[string]*topicOffsets, error) {
	out := map[string]*topicOffsets{}
	if len(topics) == 0 {
		return out, nil
	}
	meta, err := m.metadata(ctx, topics)
	if err != nil {
		return nil, err
	}
	for _, t := range meta { // deleted or never created topics are absent: not watched this poll
		to := &topicOffsets{leaders: map[int]string{}, logStart: map[int]int64{}, end: map[int]int64{}, lastStable: map[int]int64{}}
		for _, p := range t.Partitions {
			to.partitions = append(to.partitions, p.ID)
			to.leaders[p.ID] = p.Leader
		}
		out[t.Name] = to
	}
	// One request per topic, leader and kind, sent to the leader itself.
	type query struct {
		which         int64
		readCommitted bool
		set           func(*topicOffsets, int, int64)
	}
	queries := []query{
		{kafkawire.Earliest, false, func(t *topicOffsets, p int, o int64) { t.logStart[p] = o }},
		{kafkawire.Latest, false, func(t *topicOffsets, p int, o int64) { t.end[p] = o }},
		{kafkawire.Latest, true, func(t *topicOffsets, p int, o int64) { t.lastStable[p] = o }},
	}
	var errs []error
	for name, to := range out {
		byLeader := map[string][]int{}
		for _, p := range to.partitions {
			byLeader[to.leaders[p]] = append(byLeader[to.leaders[p]], p)
		}
		for leader, parts := range byLeader {
			if leader == "" {
				continue // no leader: offsets unknown this poll
			}
			for _, q := range queries {
				res, err := m.fetcher.ListOffsets(ctx, leader, name, parts, q.which, q.readCommitted)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				for p, o := range res {
					q.set(to, p, o)
				}
			}
		}
	}
	if len(errs) > 0 {
		m.log.Warn("some offsets could not be read; those partitions are left out of this poll", "error", errors.Join(errs...))
	}
	// A partition whose offsets could not all be read is left out this poll.
	for name, to := range out {
		to.partitions = slices.DeleteFunc(to.partitions, func(p int) bool {
			_, a := to.logStart[p]
			_, b := to.end[p]
			_, c := to.lastStable[p]
			return !(a && b && c)
		})
		if len(to.partitions) == 0 {
			delete(out, name)
		}
	}
	return out, nil
}

// metadata asks the bootstrap brokers in turn for the metadata of topics
// (uncached, never auto-creating).
func (m *Monitor) metadata(ctx context.Context, topics []string) (map[string]kafkawire.TopicMeta, error) {
	var errs []error
	for _, b := range m.st.Load().cfg.Brokers {
		meta, err := m.fetcher.Metadata(ctx, b, topics)
		if err == nil {
			return meta, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("metadata: %w", errors.Join(errs...))
}

// tsKey is a record position.
type tsKey struct {
	topic     string
	partition int
	offset    int64
}

// tsEntry is the timestamp of the first record a consumer at offset reads.
type tsEntry struct {
	ts       time.Time
	usedPoll uint64
}

// recordTime returns the timestamp of the first record a READ_COMMITTED
// consumer positioned at offset reads (skipping transaction markers and
// aborted records), and found=false when there is none before the last
// stable offset (the consumer is caught up). Found timestamps are cached:
// the record at an offset never changes.
func (m *Monitor) recordTime(ctx context.Context, leader, topic string, partition int, offset, lastStable int64, poll uint64) (time.Time, bool, error) {
	key := tsKey{topic, partition, offset}
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
	pos := offset
	for range 8 {
		fr, err := m.fetcher.Fetch(ctx, leader, topic, partition, pos, 1<<20)
		if err != nil {
			m.metrics.tsFetches.WithLabelValues("error").Inc()
			return time.Time{}, false, err
		}
		m.metrics.tsFetches.WithLabelValues("fetched").Inc()
		recs, next := fr.Visible()
		for _, r := range recs {
			if r.Offset >= offset {
				m.tsMu.Lock()
				m.tsCache[key] = tsEntry{ts: r.Time, usedPoll: poll}
				m.tsMu.Unlock()
				return r.Time, true, nil
			}
		}
		if next <= pos || next >= min(lastStable, fr.LastStableOffset) {
			return time.Time{}, false, nil // only markers or aborted records up to the stable end
		}
		pos = next
	}
	return time.Time{}, false, errors.New("no readable record within 8 fetches")
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

// pollKafka reads every watched group and computes its status.
// It returns the time of the observation: the moment after the offsets
// were read, against which time lags are computed.
func (m *Monitor) pollKafka(ctx context.Context, st *state, poll uint64) ([]GroupStatus, time.Time, []error) {
	var errs []error
	specs, err := m.watchedGroups(ctx, st)
	if err != nil {
		return nil, m.now(), []error{err}
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
		for _, t := range g.assigned {
			topicSet[t] = true
		}
	}
	if err := m.commits.update(ctx, m.client, m.metadata, names); err != nil {
		m.log.Debug("commit times not available; STOP and STALL fall back to offsets only", "error", err)
	}
	topicNames := make([]string, 0, len(topicSet))
	for t := range topicSet {
		topicNames = append(topicNames, t)
	}
	slices.Sort(topicNames)
	topics, err := m.readTopics(ctx, topicNames) // ...then end offsets
	if err != nil {
		return nil, m.now(), append(errs, err)
	}
	now := m.now()

	params := func(s groupSpec) status.Params {
		return status.Params{Window: st.cfg.Window, SLA: s.sla, Horizon: st.cfg.Horizon}
	}
	out := make([]GroupStatus, 0, len(specs))
	seen := map[ringKey]bool{}
	type job struct {
		gi, pi int
		leader string
		offset int64
		lso    int64
	}
	var jobs []job
	for _, s := range specs {
		g := groups[s.name]
		if g.err != nil {
			continue // not reported this poll; its series stay absent until it answers
		}
		gs := GroupStatus{Group: s.name, Source: s.source, Metric: s.metric, State: g.state, Members: g.members, SLA: Seconds{s.sla, true}}
		var gTopics []string
		for t := range topicSet {
			if _, ok := topics[t]; !ok {
				continue
			}
			_, committed := g.committed[t]
			if committed || slices.Contains(s.topics, t) || slices.Contains(g.assigned, t) {
				gTopics = append(gTopics, t)
			}
		}
		slices.Sort(gTopics)
		for _, t := range gTopics {
			to := topics[t]
			for _, p := range to.partitions {
				pl := PartitionLag{Topic: t, Partition: p, LogStart: to.logStart[p], End: to.end[p], LastStable: to.lastStable[p]}
				c, ok := g.committed[t][p]
				if ok && c >= 0 {
					pl.Committed = Known(c)
					pl.Lag = Known(max(0, pl.End-c))
					pl.TimeLag = Seconds{0, true}
					pos := max(c, pl.LogStart) // below the log start the consumer resumes at the log start
					if pos < pl.LastStable {
						jobs = append(jobs, job{gi: len(out), pi: len(gs.Partitions), leader: to.leaders[p], offset: pos, lso: pl.LastStable})
					}
				}
				if ts, ok := m.commits.lastCommit(s.name, t, p); ok {
					pl.LastCommit = &ts
				}
				gs.Partitions = append(gs.Partitions, pl)
			}
		}
		out = append(out, gs)
	}

	// Time lags, fetched concurrently (cached when the offset did not move).
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
			ts, found, err := m.recordTime(ctx, j.leader, pl.Topic, pl.Partition, j.offset, j.lso, poll)
			switch {
			case err != nil:
				pl.TimeLag = Seconds{}
				pl.Error = fmt.Sprintf("read record at %d: %v", j.offset, err)
				mu.Lock()
				errs = append(errs, fmt.Errorf("time lag of %s %s/%d: %w", out[j.gi].Group, pl.Topic, pl.Partition, err))
				mu.Unlock()
			case found:
				pl.TimeLag = Seconds{max(0, now.Sub(ts)), true}
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
		for pi := range gs.Partitions {
			pl := &gs.Partitions[pi]
			key := ringKey{gs.Group, pl.Topic, pl.Partition}
			seen[key] = true
			smp := status.Sample{At: now, Committed: pl.Committed.N, HasCommit: pl.Committed.Known, LogStart: pl.LogStart, End: pl.End, TimeLag: pl.TimeLag.D}
			if pl.LastCommit != nil {
				smp.LastCommit = *pl.LastCommit
			}
			ring := m.rings[key]
			if n := len(ring); n > 0 && smp.End < ring[n-1].End {
				ring = nil // the partition was recreated or truncated: start over
			}
			ring = trimRing(append(ring, smp), now, st.cfg.Window)
			m.rings[key] = ring
			r := status.Evaluate(ring, params(spec))
			pl.Status, pl.Conditions, pl.Lost, pl.Forecast = r.Status, r.Conditions, r.Lost, r.Forecast
			results = append(results, r)
			if pl.Lag.Known {
				gs.Lag += pl.Lag.N
				gs.MaxLag = max(gs.MaxLag, pl.Lag.N)
				if pl.TimeLag.Known {
					gs.TimeLag = Seconds{max(gs.TimeLag.D, pl.TimeLag.D), true}
				}
			} else {
				gs.UnknownPartitions++
			}
		}
		cg := status.Combine(results)
		gs.Status, gs.Conditions, gs.Lost, gs.Forecast = cg.Status, cg.Conditions, cg.Lost, cg.Forecast
		if gs.Conditions == nil {
			gs.Conditions = []status.Status{}
		}
		gs.Advice = status.Advise(cg.Forecast, gs.Lag, gs.TimeLag.D, spec.sla, gs.Members, len(gs.Partitions))
	}
	for k := range m.rings {
		if !seen[k] {
			delete(m.rings, k) // the group, topic or partition is gone
		}
	}
	return out, now, errs
}

// trimRing keeps the samples inside the window plus the newest one at or
// before its start (so a rate spans the whole window).
func trimRing(ring []status.Sample, now time.Time, window time.Duration) []status.Sample {
	from := now.Add(-window)
	i := 0
	for i+1 < len(ring) && !ring[i+1].At.After(from) {
		i++
	}
	return slices.Clip(ring[i:])
}
