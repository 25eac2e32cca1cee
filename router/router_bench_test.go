//go:build bench

package router_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/kafkabatch"
	"github.com/hourglass-io/hourglass/internal/record"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	"github.com/hourglass-io/hourglass/router"
)

// TestBenchRouter measures the router's throughput (raw records consumed,
// decoded, filtered and fanned out to the six catalog metrics, acks=all, per
// second) beside two baselines on the same input in the same run, the
// repetitions interleaved:
//
//   - a bare kafka-go consume-and-produce loop with the same client settings
//     that writes the same output records (same count, same bytes, same keys,
//     to copies of the metric topics), computed before it starts: the cost of
//     Kafka I/O alone (goal: the router at 0.8 of it);
//   - a Kafka Streams application doing the same decode, filter, project and
//     fan-out (bench/kstreams, the kafka-streams release of the stack's
//     Kafka): the tool a Kafka user would reach for (goal: the router at 1.0×
//     it). Its output is checked against the router's: the same number of
//     records every repetition, byte for byte (keys and values, per topic) in
//     the first.
func TestBenchRouter(t *testing.T) {
	const n = 200_000
	e := newEnv(t)
	valid, _ := e.generate(t, 77, n, 0, true) // as ingress writes them
	outputs, perInput := routedOutputsOf(t, e)
	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	// What the router writes, per metric topic, as sorted "tenant\tprojection"
	// lines (its routes applied here; the integration tests check the router
	// writes exactly these), one string per topic: what the subjects run
	// beside must not be millions of pointers for the garbage collector to
	// scan at every cycle of the router's (outputs is packed for the same
	// reason).
	want := map[string]string{}
	for topic, lines := range expected(t, c, valid) {
		want[topic] = strings.Join(lines, "\n")
	}
	valid = nil
	runtime.GC()
	ks := buildKStreams(t)
	reps := benchreport.Reps()
	notes := fmt.Sprintf("200k generated records (~380 B) as ingress writes them (canonical, marked: the router skips the JSON well-formedness pass, still checks every field), 5 tenants, 3 partitions; %.1f projected records out per input", perInput)
	res := benchreport.Result{
		Goal: 0.8, // issue 16: ≥ 0.8 of a bare loop producing the same records
		Name: "router fan-out", Unit: "records/s",
		Subject:  "hourglass router (6 metrics)",
		Baseline: "bare consume→produce loop writing the same output records",
		Notes:    notes,
	}
	streams := benchreport.Result{
		Goal: 1.0, // issue 16: ≥ 1.0× a Kafka Streams application doing the same work
		Name: "router fan-out vs Kafka Streams", Unit: "records/s",
		Subject:  "hourglass router (6 metrics)",
		Baseline: "Kafka Streams " + ks.version + " app (bench/kstreams): same decode/filter/project/fan-out",
		Notes: notes + "; Kafka Streams timed from KafkaStreams.start() (JVM start-up, class loading and client construction excluded; " +
			"group join and JIT warm-up included, as the router's time includes its group join) to every input offset committed: " +
			kstreamsSettings + "; output checked equal to the router's (count every repetition, bytes in the first)",
	}
	var routerTopics []string
	for _, rt := range c.Routes() {
		routerTopics = append(routerTopics, rt.Topic)
	}
	// CPU time of this process per input record while each subject runs
	// (both run in it; the broker's is not counted): steadier than the
	// throughputs on a machine that runs the broker on the same 2 cores.
	var routerCPU, bareCPU []float64
	for rep := range reps {
		before := endTotal(t, e.brokers, routerTopics...)
		group := stacktest.UniqueName("bench-router")
		cpu := benchreport.CPUTime()
		res.Subj = append(res.Subj, float64(n)/timeRouter(t, e, group, rep).Seconds())
		routerCPU = append(routerCPU, (benchreport.CPUTime()-cpu).Seconds()*1e6/n)
		routerOut := endTotal(t, e.brokers, routerTopics...) - before
		group = stacktest.UniqueName("bench-bare")
		cpu = benchreport.CPUTime()
		res.Base = append(res.Base, float64(n)/timeBareLoop(t, e, group, outputs).Seconds())
		bareCPU = append(bareCPU, (benchreport.CPUTime()-cpu).Seconds()*1e6/n)

		run := ks.run(t, e, c, n)
		streams.Base = append(streams.Base, float64(n)/run.elapsed.Seconds())
		t.Logf("rep %d: Kafka Streams %s from start() (%s from RUNNING, all input processed after %s); router wrote %d records, Kafka Streams %d",
			rep, run.elapsed.Round(time.Millisecond), run.sinceRunning.Round(time.Millisecond), run.consumed.Round(time.Millisecond), routerOut, run.out)
		require.Equal(t, routerOut, run.out, "Kafka Streams wrote as many records as the router")
		if rep == 0 {
			for topic, lines := range want {
				requireSameLines(t, strings.Split(lines, "\n"), topicLines(t, e.brokers, run.topics[topic]), run.topics[topic])
			}
			want = nil
		}
	}
	streams.Subj = res.Subj
	res.Notes += fmt.Sprintf("; CPU per input record (median, this process): router %.1f µs, bare loop %.1f µs",
		benchreport.Median(routerCPU), benchreport.Median(bareCPU))
	benchreport.Write(t, res)
	benchreport.Write(t, streams)
}

// inputKey names one raw record: partition and offset.
type inputKey struct {
	partition int
	offset    int64
}

// routedOutputs is what the router writes for each raw record, packed
// without pointers (one byte arena, offsets into it) so that the garbage
// collector does not scan it while the subjects run.
type routedOutputs struct {
	topics  []string // bare topic of each route
	arena   []byte   // keys and values
	recs    []packedMessage
	byInput map[inputKey][2]int32 // range of recs
}

type packedMessage struct {
	route                          uint8
	keyOff, keyLen, valOff, valLen uint32
}

// messages appends the output messages of input record k to dst.
func (o *routedOutputs) messages(dst []kafka.Message, k inputKey) []kafka.Message {
	r := o.byInput[k]
	for _, p := range o.recs[r[0]:r[1]] {
		dst = append(dst, kafka.Message{Topic: o.topics[p.route],
			Key: o.arena[p.keyOff : p.keyOff+p.keyLen], Value: o.arena[p.valOff : p.valOff+p.valLen]})
	}
	return dst
}

// routedOutputsOf computes, for each raw record, the messages the router
// writes for it (the catalog's routes: filter and projection), with their
// topics renamed to bare copies created here.
func routedOutputsOf(t *testing.T, e *testEnv) (*routedOutputs, float64) {
	c, err := catalog.Load(e.catalogPath)
	require.NoError(t, err)
	routes := c.Routes()
	out := &routedOutputs{byInput: map[inputKey][2]int32{}}
	for _, rt := range routes {
		bare := stacktest.UniqueName("bench-bare-" + rt.Metric)
		stacktest.CreateTopic(t, e.brokers, bare, rt.Partitions)
		out.topics = append(out.topics, bare)
	}
	raw := stacktest.ReadAll(t, e.brokers, e.raw)
	for _, m := range raw {
		rec, _, err := record.Decode(m.Value)
		require.NoError(t, err)
		first := len(out.recs)
		for i := range routes {
			if routes[i].Match(&rec) {
				p := packedMessage{route: uint8(i), keyOff: uint32(len(out.arena)), keyLen: uint32(len(rec.Tenant))}
				out.arena = append(out.arena, rec.Tenant...)
				p.valOff = uint32(len(out.arena))
				out.arena = routes[i].Project(out.arena, &rec)
				p.valLen = uint32(len(out.arena)) - p.valOff
				out.recs = append(out.recs, p)
			}
		}
		out.byInput[inputKey{m.Partition, m.Offset}] = [2]int32{int32(first), int32(len(out.recs))}
	}
	return out, float64(len(out.recs)) / float64(len(raw))
}

func timeRouter(t *testing.T, e *testEnv, group string, rep int) time.Duration {
	cfg := e.config()
	cfg.Group = group
	r, err := router.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- r.Run(ctx) }()
	stacktest.WaitCommitted(t, e.brokers, group, e.raw, 3, 200_000, 5*time.Minute)
	elapsed := time.Since(start)
	cancel()
	require.NoError(t, <-done)
	return elapsed
}

func timeBareLoop(t *testing.T, e *testEnv, group string, outputs *routedOutputs) time.Duration {
	cfg := router.DefaultConfig()
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{e.brokers}, GroupID: group, Topic: e.raw, StartOffset: kafka.FirstOffset,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: cfg.BatchSize,
	})
	writer := &kafka.Writer{Addr: kafka.TCP(e.brokers), Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: cfg.BatchSize, BatchBytes: 16 << 20,
		BatchTimeout: time.Millisecond, Compression: kafka.Lz4}
	defer reader.Close()
	defer writer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var total int
	for total < 200_000 {
		batch, err := kafkabatch.Fetch(ctx, reader, cfg.BatchSize, cfg.BatchWait)
		require.NoError(t, err)
		var outMsgs []kafka.Message
		for _, m := range batch {
			outMsgs = outputs.messages(outMsgs, inputKey{m.Partition, m.Offset})
		}
		require.NoError(t, writer.WriteMessages(ctx, outMsgs...))
		require.NoError(t, reader.CommitMessages(ctx, batch...))
		total += len(batch)
	}
	return time.Since(start)
}

// endTotal sums the end offsets of topics (a topic not created yet counts 0):
// the records written to them when nothing was deleted.
func endTotal(t *testing.T, brokers string, topics ...string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sum int64
	for _, topic := range topics {
		if stacktest.Partitions(ctx, brokers, topic) == 0 {
			continue
		}
		ends, err := stacktest.EndOffsets(ctx, brokers, topic)
		require.NoError(t, err, "end offsets of %s", topic)
		for _, o := range ends {
			sum += o
		}
	}
	return sum
}

// requireSameLines compares sorted lines without printing a million of them.
func requireSameLines(t *testing.T, want, got []string, topic string) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			t.Fatalf("%s: line %d of %d differs:\nrouter:        %q\nKafka Streams: %q", topic, i, len(want), want[i], got[i])
		}
	}
	require.Equal(t, len(want), len(got), "%s: records", topic)
}

// kstreamsSettings are the Kafka Streams app's client settings
// (bench/kstreams RouterApp), for the benchmark's notes.
const kstreamsSettings = "at_least_once, one stream thread per input partition (3), acks=all, lz4, " +
	"linger.ms=100 and batch.size=1 MiB (the router hands its writer ~650 projections per output partition at once), " +
	"max.poll.records=2000, 16 MiB partition fetches, fetch.max.wait.ms=250 (the router's reader), " +
	"commit.interval.ms at its default (30 s) with a commit requested when the input's last record is processed"

// kstreamsApp is the Kafka Streams baseline (bench/kstreams), built once per
// benchmark run into bench/kstreams/target/.
type kstreamsApp struct {
	version   string // kafka-streams, the stack's Kafka version
	classpath string
}

// buildKStreams packages bench/kstreams with Maven: offline when the local
// repository has every artifact, else from Maven Central.
func buildKStreams(t *testing.T) kstreamsApp {
	version := stacktest.Get(t, "HOURGLASS_KAFKA_VERSION")
	dir, err := filepath.Abs("../bench/kstreams")
	require.NoError(t, err)
	args := []string{"-q", "-B", "-Dstyle.color=never", "-f", filepath.Join(dir, "pom.xml"), "-Dkafka.version=" + version, "package"}
	began := time.Now()
	if out, err := exec.Command("mvn", append([]string{"-o"}, args...)...).CombinedOutput(); err != nil {
		t.Logf("bench/kstreams: offline build failed (%v), building with Maven Central: %s", err, tail(out, 1000))
		out, err := exec.Command("mvn", args...).CombinedOutput()
		require.NoError(t, err, "mvn package bench/kstreams: %s", tail(out, 4000))
	}
	t.Logf("bench/kstreams built in %s", time.Since(began).Round(time.Millisecond))
	target := filepath.Join(dir, "target")
	return kstreamsApp{version: version,
		classpath: filepath.Join(target, "kstreams-bench.jar") + string(os.PathListSeparator) + filepath.Join(target, "lib-"+version, "*")}
}

func tail(b []byte, n int) string { return string(b[max(0, len(b)-n):]) }

// kstreamsConfig is the routes file RouterApp reads: the catalog's routes
// with their filters as conditions (catalog.Route's filter is a Go func).
type kstreamsConfig struct {
	Brokers       string            `json:"bootstrap_servers"`
	ApplicationID string            `json:"application_id"`
	StateDir      string            `json:"state_dir"`
	SourceTopic   string            `json:"source_topic"`
	DLQTopic      string            `json:"dlq_topic"`
	MaxPastMS     int64             `json:"max_past_ms"`
	MaxFutureMS   int64             `json:"max_future_ms"`
	Properties    map[string]string `json:"properties,omitempty"`
	Routes        []kstreamsRoute   `json:"routes"`
}

type kstreamsRoute struct {
	Metric string              `json:"metric"`
	Topic  string              `json:"topic"`
	Fields []string            `json:"fields"`
	Filter []kstreamsCondition `json:"filter"`
}

type kstreamsCondition struct {
	Field string     `json:"field"`
	Op    catalog.Op `json:"op"`
	Value any        `json:"value,omitempty"`
	List  []any      `json:"list,omitempty"`
}

// kstreamsRun is one run of the app.
type kstreamsRun struct {
	elapsed      time.Duration     // KafkaStreams.start() to every input offset committed
	sinceRunning time.Duration     // the same from the RUNNING state
	consumed     time.Duration     // start() to the input's last record processed
	out          int64             // records written to the metric topics
	topics       map[string]string // the router's metric topic → the app's
}

// run starts the app on e's raw topic with its own application id (consumer
// group) and metric topics, times it until it has committed all n input
// records, stops it and counts its output.
func (k kstreamsApp) run(t *testing.T, e *testEnv, c *catalog.Catalog, n int64) kstreamsRun {
	bounds := e.config().TimeBounds
	cfg := kstreamsConfig{Brokers: e.brokers, ApplicationID: stacktest.UniqueName("bench-kstreams"), StateDir: t.TempDir(),
		SourceTopic: e.raw, DLQTopic: stacktest.UniqueName("bench-kstreams-dlq"),
		MaxPastMS: bounds.MaxPast.Milliseconds(), MaxFutureMS: bounds.MaxFuture.Milliseconds()}
	stacktest.CreateTopic(t, e.brokers, cfg.DLQTopic, 1)
	run := kstreamsRun{topics: map[string]string{}}
	var topics []string
	for i, rt := range c.Routes() {
		topic := stacktest.UniqueName("bench-kstreams-" + rt.Metric)
		stacktest.CreateTopic(t, e.brokers, topic, rt.Partitions)
		run.topics[rt.Topic] = topic
		topics = append(topics, topic)
		r := kstreamsRoute{Metric: rt.Metric, Topic: topic, Fields: rt.Fields, Filter: []kstreamsCondition{}}
		for _, cond := range c.Metrics[i].Filter {
			r.Filter = append(r.Filter, kstreamsCondition{Field: cond.Field, Op: cond.Op, Value: cond.Value, List: cond.List})
		}
		cfg.Routes = append(cfg.Routes, r)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.json")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	logPath := filepath.Join(dir, "kstreams.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close()

	cmd := exec.Command("java", "-Xms512m", "-Xmx512m", "-cp", k.classpath, "io.hourglass.bench.kstreams.RouterApp", path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = logFile
	require.NoError(t, cmd.Start())
	lines, exited, waited := make(chan string, 16), make(chan error, 1), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait() // after stdout is read to its end, as Wait requires
		close(waited)
	}()
	t.Cleanup(func() {
		select {
		case <-waited:
		default:
			_ = cmd.Process.Kill() // the test failed before stopping it
			<-waited
		}
	})
	fail := func(format string, args ...any) {
		t.Helper()
		log, _ := os.ReadFile(logPath)
		t.Fatalf("Kafka Streams app: "+format+"\n--- its stderr (end) ---\n%s", append(args, tail(log, 4000))...)
	}
	// The app's timestamps (Unix nanoseconds) and ours come from the same clock.
	stamps := map[string]time.Time{}
	var stopped string
	onLine := func(line string) {
		word, rest, _ := strings.Cut(line, " ")
		if ns, err := strconv.ParseInt(rest, 10, 64); err == nil {
			stamps[word] = time.Unix(0, ns)
		} else if word == "STOPPED" {
			stopped = rest
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for stamps["STARTING"].IsZero() {
		select {
		case line, ok := <-lines:
			if !ok {
				fail("exited before it started: %v", <-exited)
			}
			onLine(line)
		case <-time.After(time.Until(deadline)):
			fail("not started after 5 minutes")
		}
	}
	var done time.Time
	for done.IsZero() {
		select {
		case line, ok := <-lines:
			if !ok {
				fail("exited before committing its input: %v", <-exited)
			}
			onLine(line)
			continue
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := stacktest.CommittedTotal(ctx, e.brokers, cfg.ApplicationID, e.raw, 3)
		cancel()
		switch {
		case err == nil && got >= n:
			done = time.Now()
		case time.Now().After(deadline):
			fail("%d of %d input records committed after 5 minutes (%v)", got, n, err)
		default:
			time.Sleep(10 * time.Millisecond) // as stacktest.WaitCommitted polls
		}
	}
	require.NoError(t, stdin.Close()) // the app closes (committing) and exits
	for line := range lines {
		onLine(line)
	}
	if err := <-exited; err != nil {
		fail("exit: %v", err)
	}
	require.NotEmpty(t, stopped, "the app reported its counts")
	t.Logf("Kafka Streams app: %s; JVM CPU time %s (start-up and shutdown included)", stopped,
		(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Round(time.Millisecond))
	run.elapsed = done.Sub(stamps["STARTING"])
	if !stamps["RUNNING"].IsZero() {
		run.sinceRunning = done.Sub(stamps["RUNNING"])
	}
	if !stamps["CONSUMED"].IsZero() {
		run.consumed = stamps["CONSUMED"].Sub(stamps["STARTING"])
	}
	run.out = endTotal(t, e.brokers, topics...)
	return run
}
