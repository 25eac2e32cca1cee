//go:build integration

package lagmon_test

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/stacktest"
	lagmon "github.com/hourglass-io/hourglass/lag-monitor"
	"github.com/hourglass-io/hourglass/lag-monitor/kafkawire"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// Kafka's own Java clients, from the jars the stack already has: a
// transactional producer (testdata/TxnProducer.java, run in source-file
// mode) and the console consumer.

// java starts a Java program on Kafka's classpath; it is killed at cleanup.
// stdout lines are sent to lines; stdin stays open until cleanup.
func startJava(t *testing.T, args ...string) (lines <-chan string, stdin io.WriteCloser) {
	t.Helper()
	full := append([]string{"-Xmx192m", "-Dlog4j.configuration=" + stacktest.Get(t, "HOURGLASS_KAFKA_LOG4J"),
		"-cp", stacktest.Get(t, "HOURGLASS_KAFKA_CLASSPATH")}, args...)
	cmd := exec.Command("java", full...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	ch := make(chan string, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ch <- sc.Text():
			default: // a chatty program (the console consumer) is not read
			}
		}
	}()
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("java %v stderr:\n%s", args, stderr.String())
		}
	})
	return ch, in
}

// waitLine waits for a line from a Java program.
func waitLine(t *testing.T, lines <-chan string, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the program ended before printing %q", want)
			if l == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %q within %s", want, timeout)
		}
	}
}

// txnProducer runs testdata/TxnProducer.java.
func txnProducer(t *testing.T, brokers, topic string, args ...string) (<-chan string, io.WriteCloser) {
	return startJava(t, append([]string{"testdata/TxnProducer.java", brokers, topic, stacktest.UniqueName("txn")}, args...)...)
}

// lastDataOffsets reads each partition as a read_committed consumer would
// and returns the offset after its last data record (where most clients
// commit) and the end.
func lastDataOffsets(t *testing.T, brokers, topic string, partitions int) (afterData, end map[int]int64) {
	t.Helper()
	f := &kafkawire.Fetcher{ClientID: "lagmon-test"}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	afterData, end = map[int]int64{}, map[int]int64{}
	for p := range partitions {
		pos := int64(0)
		for {
			fr, err := f.Fetch(ctx, brokers, topic, p, pos, 1<<20)
			require.NoError(t, err)
			recs, next := fr.Visible()
			for _, r := range recs {
				afterData[p] = r.Offset + 1
			}
			end[p] = fr.HighWatermark
			if next < 0 || next >= fr.LastStableOffset {
				break
			}
			pos = next
		}
	}
	return afterData, end
}

// Issue 20, case 1: a transactional producer commits several transactions;
// the consumer commits after its last data record, so every partition's
// last commit marker stays after the committed offset. The monitor says lag
// 0, OK, never STOP, over more than a window (Kafka's own tool says lag 1).
func TestTransactionMarkersAreNotLag(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 2s\nsla: 1h\n")
	topic := e.createTopic("txn-markers", 2)
	lines, _ := txnProducer(t, e.brokers, topic, "commit", "3", "10")
	waitLine(t, lines, "COMMITTED", 90*time.Second)
	// The coordinator writes the last commit markers after commitTransaction
	// returns: wait for them (3 × (10 records + 1 marker)).
	var afterData, end map[int]int64
	require.Eventually(t, func() bool {
		afterData, end = lastDataOffsets(t, e.brokers, topic, 2)
		return end[0] == 33 && end[1] == 33
	}, 30*time.Second, 100*time.Millisecond, "commit markers")
	require.Equal(t, map[int]int64{0: 32, 1: 32}, afterData)
	group := e.group("txn-markers")
	e.mustCommit(group, topic, afterData)
	e.start()

	// Every poll until the window has been covered twice over: OK, lag 0.
	first := e.waitSnap(30*time.Second, "the group", func(s *lagmon.Snapshot) bool { return groupOf(s, group) != nil })
	var last *lagmon.Snapshot
	e.waitSnap(60*time.Second, "two windows of polls", func(s *lagmon.Snapshot) bool {
		if last == nil || s.Poll != last.Poll {
			g := groupOf(s, group)
			require.NotNil(t, g)
			require.Equal(t, status.OK, g.Status, "poll %d: conditions %v", s.Poll, g.Conditions)
			require.Equal(t, lagmon.Known(0), g.Lag, "poll %d", s.Poll)
			for _, p := range g.Partitions {
				require.True(t, p.OnlyControlRecords, "%+v", p)
				require.Equal(t, lagmon.Known(33), p.End)
				require.Equal(t, lagmon.Seconds{D: 0, Known: true}, p.TimeLag)
			}
			last = s
		}
		return s.At.Sub(first.At) > 4*time.Second
	})
	// Kafka's own tool counts the marker as lag; being better is the point.
	for p, row := range kafkaDescribe(t, e.brokers, group) {
		require.Equal(t, "1", row[2], "Kafka's lag of partition %d", p)
	}
}

// Issue 20, case 2: a transaction left open. A read_committed group at the
// last stable offset has lag 0 and the open transaction is its own
// condition, OPEN_TRANSACTION, with its records and age — not STALL or STOP
// on the consumer. A read_uncommitted group at the same offset has the
// open transaction's records as its lag.
func TestOpenTransactionIsNotTheConsumers(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 2s\nsla: 1h\nopen_transaction_after: 1s\n")
	topic := e.createTopic("txn-open", 1)
	lines, _ := txnProducer(t, e.brokers, topic, "commit", "1", "5")
	waitLine(t, lines, "COMMITTED", 90*time.Second)
	committed := e.group("txn-open-rc")
	uncommitted := e.group("txn-open-ru")
	e.writeConfig("poll_interval: 200ms\nwindow: 2s\nsla: 1h\nopen_transaction_after: 1s\n" +
		"isolation_level_overrides: [{group: \"" + uncommitted + "\", isolation_level: read_uncommitted}]\n")
	e.mustCommit(committed, topic, map[int]int64{0: 6}) // past the marker: at the end
	e.mustCommit(uncommitted, topic, map[int]int64{0: 6})
	openLines, _ := txnProducer(t, e.brokers, topic, "open", "20")
	waitLine(t, openLines, "OPEN", 90*time.Second)
	e.start()

	first := e.waitSnap(60*time.Second, "OPEN_TRANSACTION", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, committed)
		return g != nil && g.Status == status.OpenTransaction
	})
	s := e.waitSnap(60*time.Second, "more than a window later", func(s *lagmon.Snapshot) bool { return s.At.Sub(first.At) > 3*time.Second })
	g := groupOf(s, committed)
	require.Equal(t, status.OpenTransaction, g.Status, "conditions %v", g.Conditions)
	require.NotContains(t, g.Conditions, status.Stall)
	require.NotContains(t, g.Conditions, status.Stop)
	require.Equal(t, lagmon.ReadCommitted, g.Isolation)
	require.Equal(t, lagmon.Known(0), g.Lag)
	p := g.Partitions[0]
	require.Equal(t, lagmon.Known(6), p.LastStable)
	require.Equal(t, lagmon.Known(26), p.End)
	require.Equal(t, int64(20), p.OpenTxnRecords)
	require.True(t, p.OpenTxnAge.Known)
	require.Greater(t, p.OpenTxnAge.D, 3*time.Second, "its age grows with the wall clock")

	ru := groupOf(s, uncommitted)
	require.Equal(t, lagmon.ReadUncommitted, ru.Isolation)
	require.Equal(t, lagmon.Known(20), ru.Lag, "read_uncommitted: the open records are its work")
	require.NotContains(t, ru.Conditions, status.OpenTransaction)
	require.Equal(t, 20.0, lagmonGauge(t, e, "hourglass_consumer_open_transaction_records", committed))
	require.Greater(t, lagmonGauge(t, e, "hourglass_consumer_open_transaction_age_seconds", committed), 3.0)
}

// lagmonGauge returns the value of a gauge series of group (fails when absent).
func lagmonGauge(t *testing.T, e *env, name, group string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" && l.GetValue() == group {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s series for %s", name, group)
	return 0
}

// Issue 21: Kafka's own Java 3.9 consumer (consumer protocol v3) in a
// subscribed group, joined and never committing while 300 records wait: the
// monitor sees its member and client id, its assignment, the three
// never-committed partitions, lag 300 and a status that is not OK.
func TestJavaConsumerGroupMembers(t *testing.T) {
	e := newEnv(t, "poll_interval: 200ms\nwindow: 30s\nsla: 1h\n")
	topic := e.createTopic("java-group", 3)
	for p := range 3 {
		e.produce(topic, p, 100, nil)
	}
	group := e.group("java-group")
	clientID := stacktest.UniqueName("java-client")
	startJava(t, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", e.brokers, "--topic", topic,
		"--group", group, "--from-beginning", "--consumer-property", "enable.auto.commit=false",
		"--consumer-property", "client.id="+clientID)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = e.client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
	})
	e.start()
	s := e.waitSnap(90*time.Second, "the Java member with its three partitions", func(s *lagmon.Snapshot) bool {
		g := groupOf(s, group)
		return g != nil && g.Members == 1 && len(g.Partitions) == 3 && g.Partitions[0].ClientID != ""
	})
	g := groupOf(s, group)
	require.Equal(t, "Stable", g.State)
	require.Empty(t, g.Error)
	require.Len(t, g.MemberList, 1)
	mem := g.MemberList[0]
	require.Equal(t, clientID, mem.ClientID)
	require.Equal(t, []string{topic}, mem.Subscribed)
	assigned := slices.Clone(mem.Assigned[topic])
	slices.Sort(assigned)
	require.Equal(t, []int32{0, 1, 2}, assigned)
	require.Equal(t, 3, g.UncommittedPartitions)
	require.Equal(t, lagmon.Known(300), g.Lag)
	require.NotEqual(t, status.OK, g.Status)
	require.Contains(t, g.Conditions, status.Uncommitted)
	for _, p := range g.Partitions {
		require.Equal(t, clientID, p.ClientID)
		require.Equal(t, mem.MemberID, p.MemberID)
	}
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "hourglass_lagmon_group_decode_errors_total" {
			for _, m := range mf.GetMetric() {
				require.Zero(t, m.GetCounter().GetValue(), "decode errors")
			}
		}
	}
	// Kafka's own tool agrees: one member owning the partitions, no offsets.
	for p, row := range kafkaDescribe(t, e.brokers, group) {
		require.Equal(t, "-", row[0], "current offset of %d", p)
	}
}
