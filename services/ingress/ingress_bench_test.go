//go:build bench

package ingress_test

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/benchreport"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// TestBenchIngest measures records/s and MB/s of 1 KiB records posted through
// the ingress (NDJSON, 500 per request, 4 in flight, Kafka sink, acks=all)
// beside Kafka's own ProducerPerformance tool writing the same number of
// 1 KiB records with acks=all to the same broker, repetitions interleaved.
func TestBenchIngest(t *testing.T) {
	const n, size = 100_000, 1024
	brokers := stacktest.Brokers(t)
	reps := benchreport.Reps()
	recs := benchreport.Result{Goal: 1.0, Name: "ingest (1 KiB records)", Unit: "records/s",
		Subject: "POST /v1/logs → ingress → Kafka", Baseline: "kafka ProducerPerformance acks=all"}
	mbs := benchreport.Result{Goal: 1.0, Name: "ingest (1 KiB records)", Unit: "MB/s",
		Subject: "POST /v1/logs → ingress → Kafka", Baseline: "kafka ProducerPerformance acks=all"}
	for rep := range reps {
		topic := stacktest.UniqueName("bench-ingest")
		stacktest.DeleteTopicsOnCleanup(t, brokers, topic, topic+"-dlq")
		svc := startIngress(t, brokers, topic, topic+"-dlq")
		g := gen.New(gen.Config{Seed: uint64(rep), Tenants: tenants, RecordSize: size, Start: time.Now().UTC()})
		byTenant := map[string][][]byte{}
		for range n {
			rec, line, _ := g.NextWithLine()
			byTenant[rec.Tenant] = append(byTenant[rec.Tenant], line)
		}
		elapsed := postAll(t, svc.Addr(), byTenant)
		recs.Subj = append(recs.Subj, n/elapsed.Seconds())
		mbs.Subj = append(mbs.Subj, n*size/elapsed.Seconds()/1e6)

		r, mb := producerPerf(t, brokers, topic+"-perf", n, size)
		stacktest.DeleteTopicsOnCleanup(t, brokers, topic+"-perf")
		recs.Base = append(recs.Base, r)
		mbs.Base = append(mbs.Base, mb)
	}
	benchreport.Write(t, recs)
	benchreport.Write(t, mbs)
}

func postAll(t *testing.T, addr string, byTenant map[string][][]byte) time.Duration {
	p := &gen.Poster{URL: "http://" + addr + "/v1/logs", KeyTemplate: "key-{tenant}", MaxRetries: 50,
		Client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	type job struct {
		tenant string
		lines  [][]byte
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				res, err := p.Post(context.Background(), j.tenant, j.lines)
				require.NoError(t, err)
				require.Equal(t, 202, res.Status)
			}
		}()
	}
	for tenant, lines := range byTenant {
		for len(lines) > 0 {
			k := min(500, len(lines))
			jobs <- job{tenant, lines[:k]}
			lines = lines[k:]
		}
	}
	close(jobs)
	wg.Wait()
	return time.Since(start)
}

var perfLine = regexp.MustCompile(`(\d+) records sent, ([0-9.]+) records/sec \(([0-9.]+) MB/sec\)`)

// producerPerf runs Kafka's ProducerPerformance and returns records/s and MB/s.
func producerPerf(t *testing.T, brokers, topic string, n, size int) (float64, float64) {
	stacktest.CreateTopic(t, brokers, topic, 6)
	cmd := exec.Command("java", "-Xmx512m", "-Dlog4j.configuration="+stacktest.Get(t, "HOURGLASS_KAFKA_LOG4J"),
		"-cp", stacktest.Get(t, "HOURGLASS_KAFKA_CLASSPATH"), "org.apache.kafka.tools.ProducerPerformance",
		"--topic", topic, "--num-records", strconv.Itoa(n), "--record-size", strconv.Itoa(size), "--throughput", "-1",
		"--producer-props", "bootstrap.servers="+brokers, "acks=all", "compression.type=lz4", "linger.ms=2", "batch.size=1048576") // batching as the ingress's writer (1000 records)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	m := perfLine.FindSubmatch(lines[len(lines)-1])
	require.NotNil(t, m, "unexpected ProducerPerformance output: %s", out)
	r, _ := strconv.ParseFloat(string(m[2]), 64)
	mb, _ := strconv.ParseFloat(string(m[3]), 64)
	return r, mb * 1.048576 // the tool's MB is MiB
}
