//go:build integration

package lagmon_test

// Alert drills: the lag monitor's series, scraped by the stack's real
// Prometheus, evaluated with rules.yml's expressions, routed and inhibited by
// the stack's real Alertmanager, delivered to a webhook this test serves.
//
// What is scaled for a test: the monitor polls every 500ms over a 4s window
// with a 30s SLA (production: 15s, 5m, 1h); the drill copy of rules.yml has
// every `for:` set to 2s (the expressions are the production ones, copied
// unchanged); the stack scrapes and evaluates every 2s; Alertmanager waits 1s
// before a group's first notification. Drill 1 stops and restarts a real
// metric job (Spark driver, internal/jobs/jobstest); the forecast drill's
// slow consumer is a kafka-go consumer that reads and commits at a set pace.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/gen"
	"github.com/hourglass-io/hourglass/internal/jobs/jobstest"
	"github.com/hourglass-io/hourglass/internal/stacktest"
	lagmon "github.com/hourglass-io/hourglass/lag-monitor"
	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

const (
	drillFor        = 2 * time.Second // every `for:` of the drill rules
	drillGroupWait  = 1 * time.Second // Alertmanager's group_wait in the drill config
	drillSLA        = 30 * time.Second
	drillWindow     = 4 * time.Second
	drillPoll       = 500 * time.Millisecond
	drillHorizon    = 25 * time.Second
	drillTargetsJob = "hourglass-lagmon-drill"
)

// notification is one alert of one webhook message, as received.
type notification struct {
	at     time.Time
	status string // firing or resolved
	labels map[string]string
}

// webhook is an Alertmanager webhook receiver.
type webhook struct {
	mu  sync.Mutex
	got []notification
	srv *httptest.Server
}

func newWebhook(t *testing.T) *webhook {
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		var msg struct {
			Alerts []struct {
				Status string            `json:"status"`
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(req.Body).Decode(&msg); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		w.mu.Lock()
		for _, a := range msg.Alerts {
			w.got = append(w.got, notification{at: now, status: a.Status, labels: a.Labels})
		}
		w.mu.Unlock()
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// first returns the first notification with this status whose labels
// include want.
func (w *webhook) first(st string, want map[string]string) (notification, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
next:
	for _, n := range w.got {
		if n.status != st {
			continue
		}
		for k, v := range want {
			if n.labels[k] != v {
				continue next
			}
		}
		return n, true
	}
	return notification{}, false
}

// await polls until a notification with status and labels arrives.
func (w *webhook) await(t *testing.T, timeout time.Duration, st string, want map[string]string) notification {
	t.Helper()
	var n notification
	require.Eventually(t, func() bool {
		var ok bool
		n, ok = w.first(st, want)
		return ok
	}, timeout, 50*time.Millisecond, "no %s notification %v at the webhook within %s; got %v", st, want, timeout, w.all())
	return n
}

func (w *webhook) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, n := range w.got {
		out = append(out, n.status+" "+n.labels["alertname"]+" "+n.labels["group"]+n.labels["name"])
	}
	return out
}

// sre is the stack's Prometheus and Alertmanager, set up for a drill.
type sre struct {
	t      *testing.T
	prom   string
	am     string
	scrape time.Duration
}

func post(t *testing.T, u, contentType string, body []byte) {
	t.Helper()
	res, err := http.Post(u, contentType, bytes.NewReader(body))
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "POST %s: %s", u, b)
}

// query runs an instant PromQL query and returns the result's values.
func (s *sre) query(q string) []float64 {
	res, err := http.Get(s.prom + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var out struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(res.Body).Decode(&out) != nil {
		return nil
	}
	var vs []float64
	for _, r := range out.Data.Result {
		var v float64
		fmt.Sscan(r.Value[1].(string), &v)
		vs = append(vs, v)
	}
	return vs
}

// drillRules writes rules.yml with every `for:` set to drillFor into the
// stack Prometheus's rules dir and reloads it; removed at cleanup.
func (s *sre) drillRules(name string) {
	t := s.t
	src, err := os.ReadFile("rules.yml")
	require.NoError(t, err)
	forLine := regexp.MustCompile(`(?m)^(\s+)for: \S+$`)
	require.NotEmpty(t, forLine.FindAll(src, -1))
	drill := forLine.ReplaceAll(src, []byte("${1}for: "+drillFor.String()))
	path := filepath.Join(stacktest.Get(t, "HOURGLASS_PROMETHEUS_RULES_DIR"), name+".yml")
	require.NoError(t, os.WriteFile(path, drill, 0o644))
	t.Cleanup(func() {
		os.Remove(path)
		post(t, s.prom+"/-/reload", "", nil)
	})
	post(t, s.prom+"/-/reload", "", nil)
	require.Eventually(t, func() bool {
		res, err := http.Get(s.prom + "/api/v1/rules")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return bytes.Contains(b, []byte(path))
	}, 10*time.Second, 100*time.Millisecond, "Prometheus did not load %s", path)
}

// drillReceiver points the stack's Alertmanager at the webhook (every alert
// its own group, group_wait 1s), keeping its inhibition rules; the
// original config is restored at cleanup.
func (s *sre) drillReceiver(hook string) {
	t := s.t
	path := stacktest.Get(t, "HOURGLASS_ALERTMANAGER_CONFIG")
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(orig, &cfg))
	require.NotEmpty(t, cfg["inhibit_rules"], "the stack's Alertmanager config has the production inhibition rules")
	cfg["route"] = map[string]any{"receiver": "drill", "group_by": []string{"..."},
		"group_wait": drillGroupWait.String(), "group_interval": "1s", "repeat_interval": "1h"}
	cfg["receivers"] = []any{map[string]any{"name": "drill",
		"webhook_configs": []any{map[string]any{"url": hook, "send_resolved": true}}}}
	b, err := yaml.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	t.Cleanup(func() {
		require.NoError(t, os.WriteFile(path, orig, 0o644))
		post(t, s.am+"/-/reload", "", nil)
	})
	post(t, s.am+"/-/reload", "", nil)
}

// register adds a file_sd target for addr and waits until Prometheus
// scrapes it; removed at cleanup.
func (s *sre) register(name, addr string) {
	t := s.t
	path := filepath.Join(stacktest.Get(t, "HOURGLASS_PROMETHEUS_TARGETS_DIR"), name+".json")
	b, err := json.Marshal([]map[string]any{{"targets": []string{addr}, "labels": map[string]string{"job": drillTargetsJob, "drill": name}}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path+".tmp", b, 0o644))
	require.NoError(t, os.Rename(path+".tmp", path))
	t.Cleanup(func() { os.Remove(path) })
	require.Eventually(t, func() bool {
		v := s.query(fmt.Sprintf(`up{drill=%q}`, name))
		return len(v) == 1 && v[0] == 1
	}, 20*time.Second, 200*time.Millisecond, "Prometheus does not scrape %s (file_sd %s)", addr, path)
}

// startConsumer runs a kafka-go group consumer that reads and commits
// (every 100ms), at most perTick records per 100ms tick (0: as fast as it
// can), until stop is called.
func startConsumer(t *testing.T, brokers, group, topic string, perTick int) (stop func()) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{brokers}, GroupID: group, Topic: topic,
		StartOffset: kafka.FirstOffset, CommitInterval: 100 * time.Millisecond, MaxWait: 100 * time.Millisecond,
		HeartbeatInterval: time.Second, SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			n := 0
			for perTick == 0 || n < perTick {
				if _, err := r.ReadMessage(ctx); err != nil {
					return
				}
				n++
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C: // rate limit, not synchronisation
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			r.Close() // commits what it read, leaves the group
		})
	}
	t.Cleanup(stop)
	return stop
}

// drillJobSpec is the shipped catalog's request_rate metric renamed
// drill_<id>, reading a topic of e's and committing to a group of e's; its
// indices are deleted when the test ends.
func drillJobSpec(t *testing.T, e *env) catalog.JobSpec {
	c, err := catalog.Load("../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	i := slices.IndexFunc(c.Metrics, func(m catalog.Metric) bool { return m.Name == "request_rate" })
	require.GreaterOrEqual(t, i, 0, "request_rate in the shipped catalog")
	m := c.Metrics[i]
	m.Name = "drill_" + strings.TrimPrefix(e.prefix, "lagmon-")
	spec := catalog.SparkSpec(m)
	spec.Topic, spec.ConsumerGroup = e.createTopic("driver", 1), e.group("metrics-driver")
	es, err := esclient.New(esclient.Config{URLs: []string{stacktest.Get(t, "HOURGLASS_ES_URL")}})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = es.Do(ctx, esapi.IndicesDeleteRequest{Index: []string{spec.Alias + "-*", spec.LateIndex}}, "delete drill indices", nil)
		_, _ = e.client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{spec.ConsumerGroup}})
	})
	return spec
}

// produceEvery writes n messages made by next every 100ms to partition 0
// until the test ends.
func produceEvery(t *testing.T, brokers, topic string, n int, next func() kafka.Message) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w := &kafka.Writer{Addr: kafka.TCP(brokers), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
		defer w.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			msgs := make([]kafka.Message, n)
			for i := range msgs {
				msgs[i] = next()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := w.WriteMessages(ctx, msgs...)
			cancel()
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// produceAt writes n one-byte records every 100ms (a consumer group's
// lag is all these drills read).
func produceAt(t *testing.T, brokers, topic string, n int) {
	produceEvery(t, brokers, topic, n, func() kafka.Message { return kafka.Message{Value: []byte("x")} })
}

// produceRecords writes n valid records (event time: now) every 100ms, as
// ingress writes them (canonical, keyed by tenant).
func produceRecords(t *testing.T, brokers, topic string, n int) {
	g := gen.New(gen.Config{Seed: 1, Tenants: 2, Start: time.Now(), Rate: 1})
	produceEvery(t, brokers, topic, n, func() kafka.Message {
		r := g.Next()
		r.Timestamp = time.Now().UTC()
		return kafka.Message{Key: []byte(r.Tenant), Value: r.AppendJSON(nil)}
	})
}

// lockAlerting holds the stack's Alertmanager config for the rest of the
// test: a second drill run (another checkout's `go test`) waits instead of
// saving this run's drill config as the one to restore.
func lockAlerting(t *testing.T) {
	path := filepath.Join(filepath.Dir(stacktest.EnvFile()), "alerting.test-lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	t.Cleanup(func() { f.Close() }) // closing the file releases the lock
}

// TestAlertDrills runs the drills one after another on one monitor, one
// webhook, one drill rules file and one Alertmanager config.
func TestAlertDrills(t *testing.T) {
	lockAlerting(t)
	s := &sre{t: t, prom: stacktest.Get(t, "HOURGLASS_PROMETHEUS_URL"), am: stacktest.Get(t, "HOURGLASS_ALERTMANAGER_URL")}
	var err error
	s.scrape, err = time.ParseDuration(stacktest.Get(t, "HOURGLASS_PROMETHEUS_SCRAPE_INTERVAL"))
	require.NoError(t, err)
	eval := s.scrape // the stack evaluates as often as it scrapes
	hook := newWebhook(t)

	e := newEnv(t, fmt.Sprintf("poll_interval: %s\nwindow: %s\nsla: %s\nat_risk_horizon: %s\n", drillPoll, drillWindow, drillSLA, drillHorizon))
	name := e.prefix
	s.drillReceiver(hook.srv.URL)
	s.drillRules(name)
	e.start()
	metrics := httptest.NewServer(promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	s.register(name, strings.TrimPrefix(metrics.URL, "http://"))
	// One path: this monitor's notifier is off, and no monitor scraped by
	// this Prometheus has its own on (that would silence the status group).
	require.Eventually(t, func() bool {
		v := s.query(`max(hourglass_lagmon_notifier_enabled)`)
		return len(v) == 1 && v[0] == 0
	}, 10*time.Second, 200*time.Millisecond, "a lag monitor scraped by the stack's Prometheus sends its own alerts")

	// Drill 1: the metric job's real Spark driver (request_rate, renamed, on
	// a topic of its own) stops while records keep arriving →
	// HourglassConsumerStopped (critical) at the webhook within the rule's
	// `for` plus two scrape intervals (plus one evaluation interval and
	// Alertmanager's group_wait); resolved once a driver runs again. The
	// driver has a monitor of its own, with a 20 s window: one of its
	// micro-batches takes seconds here, longer than the 4 s window of the
	// other drills.
	t.Run("ConsumerStopped", func(t *testing.T) {
		d := newEnv(t, "poll_interval: 1s\nwindow: 20s\nsla: 10m\n")
		d.start()
		dm := httptest.NewServer(promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
		t.Cleanup(dm.Close)
		s.register(d.prefix, strings.TrimPrefix(dm.URL, "http://"))

		spec := drillJobSpec(t, d)
		group := spec.ConsumerGroup
		produceRecords(t, d.brokers, spec.Topic, 5)
		cfg := jobstest.Config(t)
		driver := jobstest.Start(t, cfg, "drill", []catalog.JobSpec{spec}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		d.waitSnap(4*time.Minute, "the driver's group healthy over a whole window", func(s *lagmon.Snapshot) bool {
			g := groupOf(s, group)
			return g != nil && g.Forecast.Known && g.Status == status.OK
		})
		stopping := time.Now()
		driver.Stop()
		stopped := time.Now()
		snap := d.waitSnap(time.Minute, "STOP", func(s *lagmon.Snapshot) bool {
			g := groupOf(s, group)
			return g != nil && hasCondition(g, status.Stop)
		})
		cond := snap.At
		const ruleFor = 0 // HourglassConsumerStopped has no `for` (production either)
		budget := ruleFor + 2*s.scrape + eval + drillGroupWait + time.Second
		fired := hook.await(t, budget+10*time.Second, "firing", map[string]string{"alertname": "HourglassConsumerStopped", "group": group})
		require.Equal(t, "critical", fired.labels["severity"])
		t.Logf("drill 1: Spark driver stopped (SIGTERM; exited after %s); STOP in the monitor %s after the exit; alert at the webhook %s after STOP (budget: for %s + 2 scrapes %s + evaluation %s + group_wait %s + 1s)",
			stopped.Sub(stopping).Round(time.Millisecond), cond.Sub(stopped).Round(time.Millisecond), fired.at.Sub(cond).Round(time.Millisecond),
			time.Duration(ruleFor), 2*s.scrape, eval, drillGroupWait)
		require.LessOrEqual(t, fired.at.Sub(cond), budget)

		restarted := time.Now()
		jobstest.Start(t, cfg, "drill", []catalog.JobSpec{spec}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		resolved := hook.await(t, 4*time.Minute, "resolved", map[string]string{"alertname": "HourglassConsumerStopped", "group": group})
		t.Logf("drill 1: driver restarted; resolved at the webhook after %s", resolved.at.Sub(restarted).Round(time.Millisecond))
	})

	// Drill 2: a consumer falling behind at a steady rate (40 records/s in,
	// 10 out: its time lag grows 0.75 s/s) → HourglassSLAAtRisk (warning)
	// before its time lag crosses the SLA.
	t.Run("SLAAtRisk", func(t *testing.T) {
		topic := e.createTopic("slow", 1)
		group := e.group("slow")
		e.mustCommit(group, topic, map[int]int64{0: 0})
		started := time.Now()
		produceAt(t, e.brokers, topic, 4)
		startConsumer(t, e.brokers, group, topic, 1)
		fired := hook.await(t, drillSLA+30*time.Second, "firing", map[string]string{"alertname": "HourglassSLAAtRisk", "name": group})
		require.Equal(t, "warning", fired.labels["severity"])
		g := groupOf(e.mon.Snapshot(), group)
		require.NotNil(t, g)
		require.True(t, g.TimeLag.Known)
		t.Logf("drill 2: forecast alert at the webhook %s after the start, time lag then %s of the %s SLA (status %s, crossing forecast in %s)",
			fired.at.Sub(started).Round(time.Millisecond), g.TimeLag.D.Round(time.Millisecond), drillSLA, g.Status, g.Forecast.CrossIn.Round(time.Millisecond))
		require.Less(t, g.TimeLag.D, drillSLA, "the forecast alert came after the breach")
		_, breached := hook.first("firing", map[string]string{"alertname": "HourglassSLABreach", "name": group})
		require.False(t, breached, "the breach alert came first")
	})

	// Drill 3: a group that joined and never commits while records wait →
	// HourglassConsumerUncommitted (critical), not silence.
	t.Run("ConsumerUncommitted", func(t *testing.T) {
		topic := e.createTopic("never", 1)
		group := e.group("never")
		e.produce(topic, 0, 50, nil)
		joined := time.Now()
		e.joinIdle(group, topic)
		fired := hook.await(t, 30*time.Second, "firing", map[string]string{"alertname": "HourglassConsumerUncommitted", "group": group, "topic": topic})
		require.Equal(t, "critical", fired.labels["severity"])
		t.Logf("drill 3: never-committing group alert at the webhook %s after it joined (for %s)", fired.at.Sub(joined).Round(time.Millisecond), drillFor)
	})

	// The stack's Prometheus scrapes every Spark Connect server's driver
	// (Spark's PrometheusServlet): the heap series
	// HourglassSparkConnectServerMemoryPressure reads exist for each.
	t.Run("SparkConnectDriversScraped", func(t *testing.T) {
		n, err := strconv.Atoi(stacktest.Get(t, "HOURGLASS_SPARK_CONNECT_SERVERS"))
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			up := s.query(`up{job="spark-connect-driver"} == 1`)
			heap := s.query(`metrics_spark_connect_driver_jvm_heap_usage_Value > 0`)
			return len(up) == n && len(heap) == n
		}, 30*time.Second, 200*time.Millisecond, "Prometheus does not scrape the %d Spark Connect drivers (up and heap series)", n)
	})

	// Series hygiene: a deleted group's series vanish from Prometheus's
	// queries at the next scrape (the monitor drops them, Prometheus marks
	// them stale), not after the 5-minute lookback.
	t.Run("DeletedGroupLeavesNoSeries", func(t *testing.T) {
		topic := e.createTopic("deleted", 1)
		group := e.group("deleted")
		e.produce(topic, 0, 10, nil)
		e.mustCommit(group, topic, map[int]int64{0: 5})
		q := fmt.Sprintf(`count({group=%q} or {name=%q})`, group, group)
		require.Eventually(t, func() bool { v := s.query(q); return len(v) == 1 && v[0] > 0 },
			20*time.Second, 100*time.Millisecond, "Prometheus never had the group's series")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := e.client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: []string{group}})
		require.NoError(t, err)
		require.NoError(t, res.Errors[group])
		deleted := time.Now()
		require.Eventually(t, func() bool { return len(s.query(q)) == 0 }, drillPoll+2*s.scrape+5*time.Second, 100*time.Millisecond,
			"series of deleted group %s still answer Prometheus queries", group)
		t.Logf("series hygiene: the deleted group's series left Prometheus's queries %s after the deletion", time.Since(deleted).Round(time.Millisecond))
	})

	// Inhibition: Kafka down inhibits the per-group alerts of the same
	// cluster. Synthetic alerts posted to Alertmanager (the stack's Kafka is
	// shared with other tests: it is not stopped here).
	t.Run("KafkaDownInhibitsGroupAlerts", func(t *testing.T) {
		down, other := name+"-a", name+"-b"
		mk := func(alert, cluster, group string, starts, ends time.Time) map[string]any {
			l := map[string]string{"alertname": alert, "cluster": cluster, "severity": "critical", "service": "hourglass"}
			if group != "" {
				l["group"] = group
			}
			return map[string]any{"labels": l, "startsAt": starts.Format(time.RFC3339Nano), "endsAt": ends.Format(time.RFC3339Nano)}
		}
		send := func(alerts ...map[string]any) {
			b, err := json.Marshal(alerts)
			require.NoError(t, err)
			post(t, s.am+"/api/v2/alerts", "application/json", b)
		}
		source := func(starts, ends time.Time) map[string]any { return mk("HourglassKafkaDown", down, "", starts, ends) }
		targets := func(starts, ends time.Time) []map[string]any {
			return []map[string]any{
				mk("HourglassConsumerStopped", down, e.group("inhibited"), starts, ends),
				mk("HourglassConsumerUncommitted", down, e.group("inhibited"), starts, ends),
				mk("HourglassConsumerStopped", other, e.group("control"), starts, ends),
			}
		}
		// Kafka goes down first (as it would: the group alerts follow it).
		t0 := time.Now()
		send(source(t0, t0.Add(5*time.Minute)))
		hook.await(t, 15*time.Second, "firing", map[string]string{"alertname": "HourglassKafkaDown", "cluster": down})
		// Then the group alerts it causes, and one of another cluster: new,
		// so Alertmanager holds each for group_wait before notifying.
		t1 := time.Now()
		send(targets(t1, t1.Add(5*time.Minute))...)
		t.Cleanup(func() { now := time.Now(); send(append(targets(t1, now), source(t0, now))...) })
		control := hook.await(t, 15*time.Second, "firing", map[string]string{"alertname": "HourglassConsumerStopped", "cluster": other})
		// Alertmanager itself says why the others are held back.
		require.Eventually(t, func() bool {
			as := s.amAlerts(`cluster="`+down+`"`, `group="`+e.group("inhibited")+`"`)
			if len(as) != 2 {
				return false
			}
			for _, a := range as {
				if a.Status.State != "suppressed" || len(a.Status.InhibitedBy) == 0 {
					return false
				}
			}
			return true
		}, 10*time.Second, 100*time.Millisecond)
		_, leaked := hook.first("firing", map[string]string{"cluster": down, "group": e.group("inhibited")})
		require.False(t, leaked, "a per-group alert of the cluster whose Kafka is down reached the webhook: %v", hook.all())
		t.Logf("inhibition: the other cluster's group alert arrived %s after it was posted; the Kafka-down cluster's two group alerts were suppressed by HourglassKafkaDown", control.at.Sub(t1).Round(time.Millisecond))
	})

	// Silence: what an SRE sets during planned work (amtool silence add, or
	// the API). A silenced group's alert is held; another group's is not.
	t.Run("SilenceHoldsOneGroup", func(t *testing.T) {
		quiet, loud := e.group("silenced"), e.group("unsilenced")
		now := time.Now()
		sil, err := json.Marshal(map[string]any{
			"matchers":  []map[string]any{{"name": "group", "value": quiet, "isRegex": false, "isEqual": true}},
			"startsAt":  now.Add(-time.Second).Format(time.RFC3339Nano),
			"endsAt":    now.Add(10 * time.Minute).Format(time.RFC3339Nano),
			"createdBy": "drill", "comment": "planned maintenance (drill)",
		})
		require.NoError(t, err)
		res, err := http.Post(s.am+"/api/v2/silences", "application/json", bytes.NewReader(sil))
		require.NoError(t, err)
		var created struct {
			SilenceID string `json:"silenceID"`
		}
		require.NoError(t, json.NewDecoder(res.Body).Decode(&created))
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		t.Cleanup(func() {
			req, _ := http.NewRequest(http.MethodDelete, s.am+"/api/v2/silence/"+created.SilenceID, nil)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		})
		alert := func(group string, ends time.Time) map[string]any {
			return map[string]any{"labels": map[string]string{"alertname": "HourglassConsumerStopped", "group": group, "severity": "critical", "service": "hourglass"},
				"startsAt": now.Format(time.RFC3339Nano), "endsAt": ends.Format(time.RFC3339Nano)}
		}
		b, err := json.Marshal([]map[string]any{alert(quiet, now.Add(5*time.Minute)), alert(loud, now.Add(5*time.Minute))})
		require.NoError(t, err)
		post(t, s.am+"/api/v2/alerts", "application/json", b)
		t.Cleanup(func() {
			end := time.Now()
			b, _ := json.Marshal([]map[string]any{alert(quiet, end), alert(loud, end)})
			post(t, s.am+"/api/v2/alerts", "application/json", b)
		})
		hook.await(t, 15*time.Second, "firing", map[string]string{"group": loud})
		require.Eventually(t, func() bool {
			as := s.amAlerts(`group="` + quiet + `"`)
			return len(as) == 1 && as[0].Status.State == "suppressed" &&
				len(as[0].Status.SilencedBy) == 1 && as[0].Status.SilencedBy[0] == created.SilenceID
		}, 10*time.Second, 100*time.Millisecond, "the silenced group's alert is not held by the silence")
		_, leaked := hook.first("firing", map[string]string{"group": quiet})
		require.False(t, leaked, "a silenced alert reached the webhook: %v", hook.all())
	})
}

func hasCondition(g *lagmon.GroupStatus, c status.Status) bool {
	for _, x := range g.Conditions {
		if x == c {
			return true
		}
	}
	return false
}

// amAlert is an alert as Alertmanager's API lists it, with why it is held.
type amAlert struct {
	Status struct {
		State       string   `json:"state"`
		InhibitedBy []string `json:"inhibitedBy"`
		SilencedBy  []string `json:"silencedBy"`
	} `json:"status"`
}

// amAlerts lists Alertmanager's alerts matching every filter (nil when the
// API does not answer: callers poll).
func (s *sre) amAlerts(filters ...string) []amAlert {
	q := url.Values{"filter": filters}
	res, err := http.Get(s.am + "/api/v2/alerts?" + q.Encode())
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var as []amAlert
	if json.NewDecoder(res.Body).Decode(&as) != nil {
		return nil
	}
	return as
}
