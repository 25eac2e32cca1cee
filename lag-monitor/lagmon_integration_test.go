//go:build integration

package lagmon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/stacktest"
	lagmon "github.com/hourglass-io/hourglass/lag-monitor"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// env is one test's isolated world: a unique prefix for topics and groups,
// a config file the monitor reads (and re-reads), and a running monitor.
type env struct {
	t       *testing.T
	brokers string
	prefix  string
	cfgPath string
	reg     *prometheus.Registry
	mon     *lagmon.Monitor
	client  *kafka.Client
}

// newEnv writes a config watching only this test's groups (allow
// ^<prefix>), applies tweak, and does not start the monitor yet.
func newEnv(t *testing.T, yaml string) *env {
	t.Helper()
	e := &env{t: t, brokers: stacktest.Brokers(t), prefix: stacktest.UniqueName("lagmon")}
	e.client = &kafka.Client{Addr: kafka.TCP(e.brokers), Timeout: 10 * time.Second}
	e.cfgPath = filepath.Join(t.TempDir(), "lagmon.yaml")
	e.writeConfig(yaml)
	return e
}

func (e *env) writeConfig(extra string) {
	e.t.Helper()
	y := "brokers: [" + e.brokers + "]\nallow: [\"^" + e.prefix + "\"]\nreload_interval: 100ms\n" + extra
	if !strings.Contains(extra, "catalog:") {
		y += "catalog: \"\"\n" // only this test's groups
	}
	tmp := e.cfgPath + ".tmp"
	require.NoError(e.t, os.WriteFile(tmp, []byte(y), 0o644))
	require.NoError(e.t, os.Rename(tmp, e.cfgPath))
}

func (e *env) topic(name string) string { return e.prefix + "." + name }
func (e *env) group(name string) string { return e.prefix + "-" + name }

// start runs the monitor until the test ends.
func (e *env) start() *lagmon.Monitor {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	load := func() (lagmon.Config, error) { return lagmon.LoadFile(e.cfgPath, lagmon.DefaultConfig()) }
	m, err := lagmon.New(load, slog.New(slog.NewTextHandler(io.Discard, nil)), e.reg)
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		require.NoError(e.t, <-done)
	})
	e.mon = m
	return m
}

// createTopic creates a topic with configs, deleted at the end.
func (e *env) createTopic(name string, partitions int, configs ...kafka.ConfigEntry) string {
	e.t.Helper()
	topic := e.topic(name)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := e.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: configs}}})
	require.NoError(e.t, err)
	require.NoError(e.t, res.Errors[topic])
	stacktest.DeleteTopicsOnCleanup(e.t, e.brokers, topic)
	return topic
}

// produce writes n records to one partition with the given timestamps
// (zero: the producer's clock).
func (e *env) produce(topic string, partition, n int, ts func(i int) time.Time) {
	e.t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(e.brokers), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchSize: 1000, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(_ kafka.Message, _ ...int) int { return partition })}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte(`{"i":` + strconv.Itoa(i) + `}`)}
		if ts != nil {
			msgs[i].Time = ts(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(e.t, w.WriteMessages(ctx, msgs...))
}

// commit commits offsets for a group without membership (as Spark does).
func (e *env) commit(group, topic string, offsets map[int]int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return stacktest.CommitOffsets(ctx, e.brokers, group, topic, offsets)
}

func (e *env) mustCommit(group, topic string, offsets map[int]int64) {
	e.t.Helper()
	require.NoError(e.t, e.commit(group, topic, offsets))
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = e.client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	})
}

func (e *env) endOffsets(topic string) map[int]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	end, err := stacktest.EndOffsets(ctx, e.brokers, topic)
	require.NoError(e.t, err)
	return end
}

// waitSnap polls the monitor's snapshot until cond holds.
func (e *env) waitSnap(timeout time.Duration, what string, cond func(*lagmon.Snapshot) bool) *lagmon.Snapshot {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := e.mon.Snapshot()
		if s.Poll > 0 && cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(s, "", " ")
			e.t.Fatalf("timed out after %s waiting for %s; last snapshot:\n%s", timeout, what, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func groupOf(s *lagmon.Snapshot, name string) *lagmon.GroupStatus {
	for i := range s.Groups {
		if s.Groups[i].Group == name {
			return &s.Groups[i]
		}
	}
	return nil
}

// seriesWith counts the gathered series with a label of the given value.
func (e *env) seriesWith(label, value string) int {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(e.t, err)
	n := 0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					n++
				}
			}
		}
	}
	return n
}

// kafkaDescribe runs Kafka's own kafka-consumer-groups --describe and
// returns partition → [current offset, log end offset, lag] as printed.
func kafkaDescribe(t *testing.T, brokers, group string) map[int][3]string {
	t.Helper()
	cmd := exec.Command("java", "-Dlog4j.configuration="+stacktest.Get(t, "HOURGLASS_KAFKA_LOG4J"),
		"-cp", stacktest.Get(t, "HOURGLASS_KAFKA_CLASSPATH"),
		"org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
		"--bootstrap-server", brokers, "--describe", "--group", group)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	rows := map[int][3]string{}
	var cols []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "GROUP" {
			cols = f
			continue
		}
		if cols == nil || len(f) < 6 || f[0] != group {
			continue
		}
		idx := func(name string) string {
			for i, c := range cols {
				if c == name && i < len(f) {
					return f[i]
				}
			}
			return ""
		}
		p, err := strconv.Atoi(idx("PARTITION"))
		require.NoError(t, err, line)
		rows[p] = [3]string{idx("CURRENT-OFFSET"), idx("LOG-END-OFFSET"), idx("LAG")}
	}
	require.NotEmpty(t, rows, "no rows in:\n%s", out)
	return rows
}

// Offset parity: three partitions committed at known offsets and one never
// committed; lag per partition equals Kafka's own tool, and the uncommitted
// partition (which Kafka's tool leaves blank) counts its records from the
// log start and is UNCOMMITTED.
func TestOffsetParityWithKafkaTool(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 1s\n")
	topic := e.createTopic("parity", 4)
	for p, n := range []int{10, 20, 30, 40} {
		e.produce(topic, p, n, nil)
	}
	group := e.group("parity")
	e.mustCommit(group, topic, map[int]int64{0: 3, 1: 20, 2: 7})
	e.start()
	snap := e.waitSnap(20*time.Second, "the group", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && len(g.Partitions) == 4
	})
	g := groupOf(snap, group)
	kafkaRows := kafkaDescribe(t, e.brokers, group)

	var kSum, kMax int64
	for _, p := range g.Partitions {
		row, printed := kafkaRows[p.Partition]
		if p.Partition == 3 {
			// Never committed: committed null, and the lag counts its 40
			// records from the log start (the group starts at earliest).
			require.False(t, p.Committed.Known)
			require.Equal(t, lagmon.ReasonNeverCommitted, p.CommittedUnknownReason)
			require.Equal(t, lagmon.Known(40), p.Lag)
			require.Equal(t, status.Uncommitted, p.Status)
			b, _ := json.Marshal(p.Committed)
			require.Equal(t, `null`, string(b))
			if printed { // printed only while a member owns it; then as "-"
				require.Equal(t, "-", row[0])
			}
			continue
		}
		require.True(t, printed, "kafka does not print partition %d", p.Partition)
		require.Equal(t, row[0], strconv.FormatInt(p.Committed.N, 10), "current offset of %d", p.Partition)
		require.Equal(t, row[1], strconv.FormatInt(p.End.N, 10), "log end offset of %d", p.Partition)
		require.Equal(t, row[2], strconv.FormatInt(p.Lag.N, 10), "lag of %d", p.Partition)
		lag, _ := strconv.ParseInt(row[2], 10, 64)
		kSum += lag
		kMax = max(kMax, lag)
	}
	require.Equal(t, lagmon.Known(kSum+40), g.Lag, "Kafka's sum plus the never-committed partition's 40")
	require.Equal(t, lagmon.Known(max(kMax, 40)), g.MaxLag)
	require.Equal(t, int64(7+0+23+40), g.Lag.N)
	require.Equal(t, 0, g.UnknownPartitions)
	require.Equal(t, status.Uncommitted, g.Status)

	// Prometheus: lag series for the committed partitions only, the unknown
	// one flagged.
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	found := map[string]int{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" && l.GetValue() == group {
					found[mf.GetName()]++
				}
			}
		}
	}
	require.Equal(t, 4, found["hourglass_consumer_lag_records"])
	require.Equal(t, 1, found["hourglass_consumer_uncommitted_partition"])
	require.Zero(t, found["hourglass_consumer_lag_unknown"])
}

// Exact time lag on the first poll: records stamped 90 minutes ago, the
// group committed in the middle. No warm-up: poll 1 has it, and BREACH.
func TestExactTimeLagFirstPollCreateTime(t *testing.T) {
	e := newEnv(t, "poll_interval: 500ms\nwindow: 2s\nsla: 1h\n")
	topic := e.createTopic("ct", 1)
	base := time.Now().Add(-90 * time.Minute).Truncate(time.Millisecond)
	e.produce(topic, 0, 100, func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) })
	group := e.group("ct")
	e.mustCommit(group, topic, map[int]int64{0: 50})
	e.start()
	snap := e.waitSnap(20*time.Second, "first poll", func(s *lagmon.Snapshot) bool { return true })
	require.Equal(t, uint64(1), snap.Poll)
	g := groupOf(snap, group)
	require.NotNil(t, g)
	want := snap.At.Sub(base.Add(50 * time.Second))
	p := g.Partitions[0]
	require.True(t, p.TimeLag.Known)
	require.InDelta(t, want.Seconds(), p.TimeLag.D.Seconds(), 0.5, "time lag of the record at offset 50")
	require.Equal(t, status.Breach, g.Status)
	require.Equal(t, lagmon.Known(50), g.Lag)
}

// Same with LogAppendTime: the timestamp that counts is the broker's append
// time, whatever the producer stamped (90 minutes ago here). Records 50-99
// are appended about 1.5 s after 0-49; SLA 1 s.
func TestExactTimeLagFirstPollLogAppendTime(t *testing.T) {
	e := newEnv(t, "poll_interval: 500ms\nwindow: 2s\nsla: 1s\n")
	topic := e.createTopic("lat", 1, kafka.ConfigEntry{ConfigName: "message.timestamp.type", ConfigValue: "LogAppendTime"})
	old := time.Now().Add(-90 * time.Minute)
	e.produce(topic, 0, 50, func(int) time.Time { return old })
	time.Sleep(1500 * time.Millisecond) // age the first half: two distinct append times
	before := time.Now()
	e.produce(topic, 0, 50, func(int) time.Time { return old })
	after := time.Now()
	group := e.group("lat")
	e.mustCommit(group, topic, map[int]int64{0: 50})
	time.Sleep(1100 * time.Millisecond) // let the append time age past the 1 s SLA
	e.start()
	snap := e.waitSnap(20*time.Second, "first poll", func(s *lagmon.Snapshot) bool { return true })
	require.Equal(t, uint64(1), snap.Poll)
	g := groupOf(snap, group)
	require.NotNil(t, g)
	p := g.Partitions[0]
	require.True(t, p.TimeLag.Known)
	lo, hi := snap.At.Sub(after)-500*time.Millisecond, snap.At.Sub(before)+500*time.Millisecond
	require.GreaterOrEqual(t, p.TimeLag.D, lo, "time lag from the append time of offset 50")
	require.LessOrEqual(t, p.TimeLag.D, hi, "time lag from the append time of offset 50 (not the producer's 90-minute-old stamp)")
	require.Equal(t, status.Breach, g.Status)
}

// Burst then idle: the time lag grows no faster than the wall clock, the
// drain ETA is within 15% of the truth, and the time lag drops to 0 within
// one poll of catching up.
func TestBurstThenIdle(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 2s\nsla: 1h\n")
	topic := e.createTopic("burst", 1)
	group := e.group("burst")
	e.mustCommit(group, topic, map[int]int64{0: 0})
	e.start()
	e.produce(topic, 0, 3000, nil) // the burst; then the producer is idle

	// A consumer draining 30 records per 100 ms: 300/s, 10 s for the burst.
	var caughtUp atomic.Int64 // unix nanos of the commit that reached the end
	var pollsAtCatchUp atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		off := int64(0)
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			off = min(off+30, 3000)
			if err := e.commit(group, topic, map[int]int64{0: off}); err != nil {
				t.Errorf("commit: %v", err)
				return
			}
			if off == 3000 {
				pollsAtCatchUp.Store(e.mon.Polls())
				caughtUp.Store(time.Now().UnixNano())
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	// Watch every snapshot until caught up: record each poll's view of the
	// partition and one drain-ETA prediction made with a full window of rates.
	var prev *lagmon.Snapshot
	var predAt time.Time
	var predETA time.Duration
	type lagSample struct {
		at   time.Time
		part lagmon.PartitionLag
	}
	var samples []lagSample
	deadline := time.Now().Add(60 * time.Second)
	for caughtUp.Load() == 0 || e.mon.Polls() < pollsAtCatchUp.Load()+2 {
		require.True(t, time.Now().Before(deadline), "no catch-up")
		s := e.mon.Snapshot()
		if prev != nil && s.Poll != prev.Poll {
			g := groupOf(s, group)
			if g != nil && len(g.Partitions) == 1 {
				samples = append(samples, lagSample{at: s.At, part: g.Partitions[0]})
			}
			if g != nil && predAt.IsZero() && g.Lag.Known && g.Lag.N > 0 && g.Lag.N < 2400 && g.Forecast.Known && g.Forecast.Drains {
				predAt, predETA = s.At, g.Forecast.DrainETA
			}
		}
		prev = s
		time.Sleep(10 * time.Millisecond)
	}
	// Every poll's time lag is the poll's clock minus the timestamp of the
	// first record the group has not read: the ground truth, read back from
	// the topic (not "it grows no faster than the clock": a producer's retry
	// can append older timestamps after newer ones, and then it must jump).
	times := map[int64]time.Time{}
	for _, m := range stacktest.ReadAll(t, e.brokers, topic) {
		times[m.Offset] = m.Time
	}
	require.Len(t, times, 3000)
	checked := 0
	for _, smp := range samples {
		c := smp.part.Committed
		if !c.Known || c.N >= 3000 || !smp.part.TimeLag.Known {
			continue
		}
		want := max(0, smp.at.Sub(times[c.N]))
		require.InDelta(t, want.Seconds(), smp.part.TimeLag.D.Seconds(), 0.002,
			"poll at %s, committed %d: time lag %s, the record there is %s old", smp.at, c.N, smp.part.TimeLag.D, want)
		checked++
	}
	require.Positive(t, checked, "no poll saw the group behind")
	require.False(t, predAt.IsZero(), "no drain forecast was made")
	truth := time.Unix(0, caughtUp.Load()).Sub(predAt)
	// 30 %: the consumer's pace is real work on a shared 2-core machine and
	// the forecast's rate is measured over half a window (it follows the
	// data); a forecast that ignored the rate would miss by far more.
	require.InDelta(t, truth.Seconds(), predETA.Seconds(), 0.30*truth.Seconds(), "drain ETA %s vs truth %s", predETA, truth)

	// Within one poll of the catch-up (the poll in flight may predate it).
	s := e.waitSnap(5*time.Second, "poll after catch-up", func(s *lagmon.Snapshot) bool { return s.Poll >= pollsAtCatchUp.Load()+2 })
	g := groupOf(s, group)
	require.Equal(t, lagmon.Seconds{D: 0, Known: true}, g.TimeLag)
	require.Equal(t, lagmon.Known(0), g.Lag)
}

// amReceiver is an Alertmanager-compatible test receiver (POST
// /api/v2/alerts), also accepting the generic webhook on /hook.
type amReceiver struct {
	mu    sync.Mutex
	am    [][]lagmon.Alert
	hooks []lagmon.WebhookMessage
	srv   *httptest.Server
}

func newReceiver(t *testing.T) *amReceiver {
	r := &amReceiver{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/alerts", func(w http.ResponseWriter, req *http.Request) {
		var alerts []lagmon.Alert
		if err := json.NewDecoder(req.Body).Decode(&alerts); err != nil || len(alerts) == 0 {
			http.Error(w, "bad alerts", http.StatusBadRequest)
			return
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == "" || a.StartsAt.IsZero() || a.EndsAt.IsZero() {
				http.Error(w, "alert without alertname/startsAt/endsAt", http.StatusBadRequest)
				return
			}
		}
		r.mu.Lock()
		r.am = append(r.am, alerts)
		r.mu.Unlock()
	})
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, req *http.Request) {
		var m lagmon.WebhookMessage
		if err := json.NewDecoder(req.Body).Decode(&m); err != nil {
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.hooks = append(r.hooks, m)
		r.mu.Unlock()
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// alerts returns every alert posted to Alertmanager for group, in order.
func (r *amReceiver) alerts(group string) []lagmon.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []lagmon.Alert
	for _, batch := range r.am {
		for _, a := range batch {
			if a.Labels["group"] == group {
				out = append(out, a)
			}
		}
	}
	return out
}

func (r *amReceiver) hookMessages(group string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.hooks {
		for _, a := range m.Alerts {
			if a.Labels["group"] == group {
				out = append(out, a.Status+" "+a.Labels["alertname"])
			}
		}
	}
	return out
}

// steady produces 20 records every 100 ms until the test ends.
func (e *env) steady(topic string) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := &kafka.Writer{Addr: kafka.TCP(e.brokers), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
		defer w.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			msgs := make([]kafka.Message, 20)
			for i := range msgs {
				msgs[i] = kafka.Message{Value: []byte("x")}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := w.WriteMessages(ctx, msgs...)
			cancel()
			if err != nil {
				e.t.Errorf("steady produce: %v", err)
				return
			}
		}
	}()
	e.t.Cleanup(func() { close(stop); wg.Wait() })
}

// consumer commits every 100 ms until stopped: the end offsets (a live
// consumer) or, with frozen, the same offset again and again.
type consumer struct {
	stop chan struct{}
	done chan struct{}
}

func (e *env) consume(group, topic string, frozen int64) *consumer {
	c := &consumer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			offs := map[int]int64{0: frozen}
			if frozen < 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				end, err := stacktest.EndOffsets(ctx, e.brokers, topic)
				cancel()
				if err != nil {
					continue
				}
				offs = map[int]int64{0: end[0]}
			}
			if err := e.commit(group, topic, offs); err != nil && !errors.Is(err, context.Canceled) {
				e.t.Logf("commit: %v", err)
			}
		}
	}()
	e.t.Cleanup(c.kill)
	return c
}

func (c *consumer) kill() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// Consumer killed under steady production: STOP within one window, time lag
// tracking elapsed time, a breach forecast, an alert at an Alertmanager-
// compatible receiver, resolved when the consumer returns.
func TestStopAlertAndResolve(t *testing.T) {
	const window = 2 * time.Second
	rcv := newReceiver(t)
	e := newEnv(t, "poll_interval: 200ms\nwindow: 2s\nsla: 12s\nat_risk_horizon: 5s\nalert_resend: 1s\n"+
		"alertmanager_urls: [\""+rcv.srv.URL+"\"]\nwebhook_urls: [\""+rcv.srv.URL+"/hook\"]\nalert_on: [STOP, BREACH, STALL, DATA_LOSS]\n")
	topic := e.createTopic("stop", 1)
	group := e.group("stop")
	e.mustCommit(group, topic, map[int]int64{0: 0})
	e.steady(topic)
	c := e.consume(group, topic, -1)
	e.start()
	// Healthy for a whole window first.
	e.waitSnap(20*time.Second, "healthy group with a full window", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && g.Forecast.Known && g.Status == status.OK
	})

	killed := time.Now()
	c.kill()
	s := e.waitSnap(window+3*time.Second, "STOP", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && g.Status == status.Stop
	})
	detected := s.At.Sub(killed)
	require.LessOrEqual(t, detected, window+3*200*time.Millisecond, "STOP after %s", detected)
	g := groupOf(s, group)
	// Time lag tracks elapsed time since the consumer's last commit (≤ 100 ms
	// before the kill) within a poll and the producer's 100 ms spacing.
	require.InDelta(t, s.At.Sub(killed).Seconds(), g.TimeLag.D.Seconds(), 0.5)
	require.True(t, g.Forecast.Crosses, "a breach forecast")
	require.InDelta(t, (12*time.Second - g.TimeLag.D).Seconds(), g.Forecast.CrossIn.Seconds(), 1.0)

	// The alert reaches the receiver, firing (endsAt in the future).
	require.Eventually(t, func() bool {
		for _, a := range rcv.alerts(group) {
			if a.Labels["alertname"] == "HourglassConsumerStopped" && a.EndsAt.After(time.Now()) {
				return true
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)

	// The consumer returns: OK again, and the alert is resolved (endsAt in the past).
	e.consume(group, topic, -1)
	e.waitSnap(10*time.Second, "OK again", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && g.Status == status.OK
	})
	require.Eventually(t, func() bool {
		as := rcv.alerts(group)
		last := as[len(as)-1]
		return last.Labels["alertname"] == "HourglassConsumerStopped" && !last.EndsAt.After(time.Now())
	}, 5*time.Second, 20*time.Millisecond)
	// The webhook got exactly one firing and one resolved message.
	require.Eventually(t, func() bool {
		return strings.Join(rcv.hookMessages(group), ",") == "firing HourglassConsumerStopped,resolved HourglassConsumerStopped"
	}, 5*time.Second, 20*time.Millisecond, "webhook messages: %v", rcv.hookMessages(group))
}

// Committing the same offset while the lag grows is STALL, not STOP.
func TestStallNotStop(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 2s\nsla: 1h\n")
	topic := e.createTopic("stall", 1)
	group := e.group("stall")
	e.produce(topic, 0, 10, nil)
	e.mustCommit(group, topic, map[int]int64{0: 5})
	e.steady(topic)
	e.consume(group, topic, 5)
	e.start()
	e.waitSnap(15*time.Second, "STALL", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && g.Status == status.Stall
	})
	// And it stays STALL (never STOP) for two more windows.
	until := time.Now().Add(4 * time.Second)
	for time.Now().Before(until) {
		g := groupOf(e.mon.Snapshot(), group)
		require.NotNil(t, g)
		require.NotContains(t, g.Conditions, status.Stop)
		require.Equal(t, status.Stall, g.Status)
		time.Sleep(50 * time.Millisecond)
	}
}

// Idle and caught up for many windows: OK, time lag 0, no alert.
func TestIdleCaughtUpIsOK(t *testing.T) {
	rcv := newReceiver(t)
	e := newEnv(t, "poll_interval: 100ms\nwindow: 500ms\nsla: 1s\nat_risk_horizon: 1h\nalertmanager_urls: [\""+rcv.srv.URL+"\"]\n")
	topic := e.createTopic("idle", 2)
	e.produce(topic, 0, 10, nil)
	e.produce(topic, 1, 5, nil)
	group := e.group("idle")
	e.mustCommit(group, topic, map[int]int64{0: 10, 1: 5})
	e.start()
	// Twenty windows.
	s := e.waitSnap(30*time.Second, "100 polls", func(s *lagmon.Snapshot) bool { return s.Poll >= 100 })
	g := groupOf(s, group)
	require.Equal(t, status.OK, g.Status)
	require.Empty(t, g.Conditions)
	require.Equal(t, time.Duration(0), g.TimeLag.D)
	require.Empty(t, rcv.alerts(group))
}

// Deleting a group or a topic removes its series within one poll.
func TestDeletedGroupAndTopicLoseSeries(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 1s\n")
	ta := e.createTopic("a", 2)
	tb := e.createTopic("b", 1)
	e.produce(ta, 0, 5, nil)
	e.produce(tb, 0, 5, nil)
	g1, g2 := e.group("one"), e.group("two")
	e.mustCommit(g1, ta, map[int]int64{0: 1})
	e.mustCommit(g2, ta, map[int]int64{0: 2})
	e.mustCommit(g2, tb, map[int]int64{0: 3})
	e.start()
	e.waitSnap(20*time.Second, "both groups", func(s *lagmon.Snapshot) bool {
		a, b := groupOf(s, g1), groupOf(s, g2)
		return a != nil && b != nil && len(b.Partitions) == 3
	})
	require.Positive(t, e.seriesWith("group", g1))
	require.Positive(t, e.seriesWith("topic", tb))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{g1}})
	require.NoError(t, err)
	require.NoError(t, res.Errors[g1])
	n0 := e.mon.Polls()
	s := e.waitSnap(5*time.Second, "group gone", func(s *lagmon.Snapshot) bool { return groupOf(s, g1) == nil })
	require.LessOrEqual(t, s.Poll, n0+2, "gone by the poll after the one in flight")
	require.Zero(t, e.seriesWith("group", g1))

	dres, err := e.client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{tb}})
	require.NoError(t, err)
	require.NoError(t, dres.Errors[tb])
	n0 = e.mon.Polls()
	s = e.waitSnap(5*time.Second, "topic gone", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, g2)
		if g == nil {
			return false
		}
		for _, p := range g.Partitions {
			if p.Topic == tb {
				return false
			}
		}
		return true
	})
	require.LessOrEqual(t, s.Poll, n0+2)
	require.Zero(t, e.seriesWith("topic", tb))
	require.Positive(t, e.seriesWith("topic", ta))
}

// A config reload adding a deny pattern takes effect within one poll.
func TestReloadDenyPattern(t *testing.T) {
	const base = "poll_interval: 200ms\nwindow: 1s\n"
	e := newEnv(t, base)
	topic := e.createTopic("deny", 1)
	e.produce(topic, 0, 5, nil)
	keep, drop := e.group("keep"), e.group("drop")
	e.mustCommit(keep, topic, map[int]int64{0: 1})
	e.mustCommit(drop, topic, map[int]int64{0: 1})
	e.start()
	e.waitSnap(20*time.Second, "both groups", func(s *lagmon.Snapshot) bool {
		return groupOf(s, keep) != nil && groupOf(s, drop) != nil
	})

	reloads := func() float64 {
		mfs, _ := e.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "hourglass_lagmon_config_reloads_total" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == "ok" {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	e.writeConfig(base + "deny: [\"-drop$\"]\n")
	require.Eventually(t, func() bool { return reloads() >= 1 }, 5*time.Second, 10*time.Millisecond)
	n0 := e.mon.Polls()
	s := e.waitSnap(5*time.Second, "denied group gone", func(s *lagmon.Snapshot) bool { return groupOf(s, drop) == nil })
	require.LessOrEqual(t, s.Poll, n0+2)
	require.NotNil(t, groupOf(s, keep))
	require.Zero(t, e.seriesWith("group", drop))

	// SIGHUP-style reload (Reload) of a config removing the deny again.
	e.writeConfig(base)
	e.mon.Reload()
	e.waitSnap(5*time.Second, "group back", func(s *lagmon.Snapshot) bool { return groupOf(s, drop) != nil })
}

// The rules file passes promtool's checks and its unit tests.
func TestPrometheusRules(t *testing.T) {
	promtool := stacktest.Get(t, "HOURGLASS_PROMTOOL_BIN")
	out, err := exec.Command(promtool, "check", "rules", "rules.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(promtool, "test", "rules", "rules_test.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// joinIdle makes one member join group subscribed to topic (which need not
// exist), be assigned nothing and never commit, heartbeating until the test
// ends: the archiver of the demo that joined before its topic existed.
func (e *env) joinIdle(group, topic string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub := kafka.GroupProtocolSubscription{Topics: []string{topic}}
	// join once: JoinGroup (again with the id the broker hands out, KIP-394),
	// then SyncGroup as the leader with an empty assignment.
	join := func() (*kafka.JoinGroupResponse, error) {
		req := &kafka.JoinGroupRequest{GroupID: group, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
			ProtocolType: "consumer", Protocols: []kafka.GroupProtocol{{Name: "range", Metadata: sub}}}
		res, err := e.client.JoinGroup(ctx, req)
		if err == nil && errors.Is(res.Error, kafka.MemberIDRequired) {
			req.MemberID = res.MemberID
			res, err = e.client.JoinGroup(ctx, req)
		}
		if err == nil {
			err = res.Error
		}
		if err != nil {
			return nil, fmt.Errorf("join %s: %w", group, err)
		}
		sync, err := e.client.SyncGroup(ctx, &kafka.SyncGroupRequest{GroupID: group, GenerationID: res.GenerationID, MemberID: res.MemberID,
			ProtocolType: "consumer", ProtocolName: res.ProtocolName,
			Assignments: []kafka.SyncGroupRequestAssignment{{MemberID: res.MemberID, Assignment: kafka.GroupProtocolAssignment{AssignedPartitions: map[string][]int{}}}}})
		if err == nil {
			err = sync.Error
		}
		if err != nil {
			return nil, fmt.Errorf("sync %s: %w", group, err)
		}
		return res, nil
	}
	// A fresh group may answer the first attempts with a retriable error
	// (a rebalance in progress, a member id from an earlier round): like a
	// consumer, join again.
	var res *kafka.JoinGroupResponse
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		if res, err = join(); err == nil {
			break
		}
		e.t.Logf("attempt %d: %v", attempt, err)
		time.Sleep(300 * time.Millisecond)
	}
	require.NoError(e.t, err)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = e.client.Heartbeat(hctx, &kafka.HeartbeatRequest{GroupID: group, GenerationID: int32(res.GenerationID), MemberID: res.MemberID})
			hcancel()
		}
	}()
	e.t.Cleanup(func() {
		close(stop)
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = e.client.LeaveGroup(ctx, &kafka.LeaveGroupRequest{GroupID: group, Members: []kafka.LeaveGroupRequestMember{{ID: res.MemberID}}})
		_, _ = e.client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	})
}

// Issue 12, finding 3: a consumer group that joined and reads but never
// commits, 300 records waiting. Kafka's own tool shows "-"; the monitor
// says UNCOMMITTED (never OK) with lag 300, counted from the log start.
func TestNeverCommittedGroupIsNotOK(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 30s\nsla: 1h\n")
	topic := e.createTopic("nocommit", 2)
	e.produce(topic, 0, 180, nil)
	e.produce(topic, 1, 120, nil)
	group := e.group("nocommit")
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{e.brokers}, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second})
	t.Cleanup(func() {
		require.NoError(t, r.Close())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = e.client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	})
	// It joins and fetches (never reading from the reader, never committing).
	e.start()
	s := e.waitSnap(60*time.Second, "the group with a member and both partitions", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && g.Members == 1 && len(g.Partitions) == 2
	})
	g := groupOf(s, group)
	require.NotEqual(t, status.OK, g.Status)
	require.Equal(t, status.Uncommitted, g.Status)
	require.Equal(t, lagmon.Known(300), g.Lag)
	require.Equal(t, 0, g.UnknownPartitions)
	for _, p := range g.Partitions {
		require.False(t, p.Committed.Known)
		require.Equal(t, lagmon.ReasonNeverCommitted, p.CommittedUnknownReason)
		require.Equal(t, status.Uncommitted, p.Status)
		require.True(t, p.TimeLag.Known, "time lag of the record at the log start")
	}
	// Kafka's tool: the partitions are owned by the member, with no offset.
	for p, row := range kafkaDescribe(t, e.brokers, group) {
		require.Equal(t, "-", row[0], "current offset of %d", p)
		require.Equal(t, "-", row[2], "lag of %d", p)
	}
	// /v1/status: null with a reason for committed; numbers for the lag.
	rr := httptest.NewRecorder()
	e.mon.Handler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	require.Contains(t, rr.Body.String(), `"committed_unknown_reason": "never_committed"`)
	require.NotContains(t, rr.Body.String(), `"unknown"`)
}

// A group that joined before its topic existed (subscribed, assigned
// nothing, never committing): OK while there is no topic, not OK once the
// topic exists and holds records.
func TestGroupCreatedBeforeItsTopic(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 30s\nsla: 1h\n")
	group := e.group("early")
	topic := e.topic("late")
	e.joinIdle(group, topic)
	e.start()
	e.waitSnap(20*time.Second, "the group, no topic yet", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && g.Members == 1 && len(g.Partitions) == 0
	})
	e.createTopic("late", 3)
	e.produce(topic, 0, 120, nil)
	e.produce(topic, 2, 80, nil)
	want := e.endOffsets(topic)
	require.Equal(t, int64(200), want[0]+want[1]+want[2])
	s := e.waitSnap(20*time.Second, "the topic's records counted", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && len(g.Partitions) == 3 && g.Lag.Known && g.Lag.N == 200
	})
	g := groupOf(s, group)
	require.Equal(t, status.Uncommitted, g.Status)
	require.Equal(t, int64(120), g.MaxLag.N)
	for _, p := range g.Partitions {
		if p.Partition == 1 {
			require.Equal(t, status.OK, p.Status, "an empty partition owes nothing")
			continue
		}
		require.Equal(t, status.Uncommitted, p.Status)
	}
}

// A group that never committed on a topic with no records: nothing is
// waiting, so OK with lag 0 (and it stays OK).
func TestNeverCommittedEmptyTopicIsOK(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 1s\nsla: 1h\n")
	topic := e.createTopic("empty", 2)
	group := e.group("empty")
	e.joinIdle(group, topic)
	e.start()
	// On a fresh broker the first reads of the group's offsets can fail
	// while the group coordinator loads (UNKNOWN, rightly): wait for a poll
	// that read them.
	s := e.waitSnap(30*time.Second, "the group with both partitions, its offsets read", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && len(g.Partitions) == 2 && g.Status != status.Unknown
	})
	// Over more than a window: OK, lag 0, never STOP.
	until := s.Poll + 10
	for s.Poll < until {
		g := groupOf(s, group)
		require.NotNil(t, g)
		require.Equal(t, status.OK, g.Status, "conditions %v", g.Conditions)
		require.Equal(t, lagmon.Known(0), g.Lag)
		require.Equal(t, lagmon.Seconds{D: 0, Known: true}, g.TimeLag)
		for _, p := range g.Partitions {
			require.Equal(t, lagmon.ReasonNeverCommitted, p.CommittedUnknownReason)
		}
		s = e.waitSnap(5*time.Second, "the next poll", func(n *lagmon.Snapshot) bool { return n.Poll > s.Poll })
	}
}
