package lagmon

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/lag-monitor/status"
)

// The inhibition rules that the drills prove on the local stack's
// Alertmanager are the ones docker-compose deploys: one list, two files.
func TestAlertmanagerInhibitRulesEqualInStackAndCompose(t *testing.T) {
	inhibit := func(path string, subst map[string]string) []map[string]any {
		t.Helper()
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		text := string(b)
		for k, v := range subst {
			text = strings.ReplaceAll(text, "${"+k+"}", v)
		}
		var cfg struct {
			InhibitRules []map[string]any `yaml:"inhibit_rules"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(text), &cfg), path)
		require.NotEmpty(t, cfg.InhibitRules, path)
		return cfg.InhibitRules
	}
	stack := inhibit("../stack/alertmanager/alertmanager.yml.tmpl", map[string]string{"ALERTMANAGER_RECEIVER_CONFIG": ""})
	compose := inhibit("../deploy/compose/alertmanager.yml", nil)
	require.Equal(t, compose, stack, "deploy/compose/alertmanager.yml and stack/alertmanager/alertmanager.yml.tmpl inhibit differently")

	// Every alert an inhibition rule names exists in rules.yml.
	rules, err := os.ReadFile("rules.yml")
	require.NoError(t, err)
	for _, r := range stack {
		for _, key := range []string{"source_matchers", "target_matchers"} {
			for _, m := range r[key].([]any) {
				for _, name := range regexp.MustCompile(`Hourglass[A-Za-z]+`).FindAllString(m.(string), -1) {
					require.Contains(t, string(rules), "- alert: "+name, "inhibition rule %v", r)
				}
			}
		}
	}
}

// Every alert pages or tickets (severity), and its runbook_url names an
// entry of docs/runbook-alerts.md.
func TestEveryAlertHasASeverityAndARunbookEntry(t *testing.T) {
	b, err := os.ReadFile("rules.yml")
	require.NoError(t, err)
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(b, &rules))
	doc, err := os.ReadFile("../docs/runbook-alerts.md")
	require.NoError(t, err)
	entries := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^### (\S+)$`).FindAllStringSubmatch(string(doc), -1) {
		entries[strings.ToLower(m[1])] = true
	}
	const base = "https://github.com/hourglass-io/hourglass/blob/main/docs/runbook-alerts.md#"
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], r.Alert)
			require.Equal(t, base+strings.ToLower(r.Alert), r.Annotations["runbook_url"], r.Alert)
			require.True(t, entries[strings.ToLower(r.Alert)], "docs/runbook-alerts.md has no entry ### %s", r.Alert)
			// One alert path: the status group is silent while the monitor's own notifier pages.
			if g.Name == "hourglass-lagmon-status" {
				require.Contains(t, r.Expr, "unless on () hourglass_lagmon_notifier_enabled == 1", r.Alert)
			}
		}
	}
	require.Len(t, entries, n, "docs/runbook-alerts.md has entries for alerts rules.yml does not have")
}

// The two gauges the alert path reads: hourglass_lagmon_kafka_up follows
// the metadata read (with and without topics to read), and
// hourglass_lagmon_notifier_enabled the current configuration.
func TestKafkaUpAndNotifierEnabledGauges(t *testing.T) {
	f := &fakeReads{groups: []string{"g"}, partitions: 1, logStart: map[int]int64{0: 0}, end: map[int]int64{0: 10},
		committed: map[string]map[string]map[int]committedOffset{"g": {"t": {0: {offset: 5}}}}, recordAge: time.Second}
	m, reg := newPollMonitor(t, f, nil)
	gauge := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	pollGroup(t, m, 1)
	require.Equal(t, 1.0, gauge("hourglass_lagmon_kafka_up"))
	require.Equal(t, 0.0, gauge("hourglass_lagmon_notifier_enabled"))

	f.metadataErr = errors.New("dial tcp: connection refused")
	m.pollKafka(context.Background(), m.st.Load(), 2)
	require.Equal(t, 0.0, gauge("hourglass_lagmon_kafka_up"), "no broker answered")
	f.groups, f.committed = nil, nil // nothing to watch: still probed
	m.pollKafka(context.Background(), m.st.Load(), 3)
	require.Equal(t, 0.0, gauge("hourglass_lagmon_kafka_up"))
	f.metadataErr = nil
	m.pollKafka(context.Background(), m.st.Load(), 4)
	require.Equal(t, 1.0, gauge("hourglass_lagmon_kafka_up"))

	st := *m.st.Load()
	st.cfg.WebhookURLs = []string{"http://hook"}
	m.st.Store(&st)
	require.Equal(t, 1.0, gauge("hourglass_lagmon_notifier_enabled"), "a webhook pages too")
}

// hourglass_metric_tenant_breach: 1 for a tenant whose hour is missing past
// its deadline, 0 for the others (HourglassMetricFreshnessBreach names them).
func TestTenantBreachSeries(t *testing.T) {
	m, reg := newPollMonitor(t, &fakeReads{}, nil)
	m.snap.Store(&Snapshot{Poll: 1, Freshness: []MetricFreshness{{Metric: "latency", Status: status.Breach, Tenants: []TenantFreshness{
		{Tenant: "acme", Status: status.Breach}, {Tenant: "globex", Status: status.OK, Age: Seconds{time.Minute, true}}}}}})
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hourglass_metric_tenant_breach 1 when a tenant's hourly window of the metric is missing past its deadline (the tenant's freshness status is BREACH), 0 otherwise. One series per metric and tenant seen in Elasticsearch.
# TYPE hourglass_metric_tenant_breach gauge
hourglass_metric_tenant_breach{metric="latency",tenant="acme"} 1
hourglass_metric_tenant_breach{metric="latency",tenant="globex"} 0
`), "hourglass_metric_tenant_breach"))
}
