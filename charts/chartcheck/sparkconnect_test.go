package chartcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hourglass-io/hourglass/charts/chartcheck/crd"
)

// The chart's HAProxy config is the checked-in haproxy/spark-connect.cfg.
func TestSparkConnectConfigEqualsItsSource(t *testing.T) {
	got, err := os.ReadFile(chartDir + "/files/spark-connect.cfg")
	require.NoError(t, err)
	want, err := os.ReadFile("../../haproxy/spark-connect.cfg")
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "cp haproxy/spark-connect.cfg charts/hourglass/files/spark-connect.cfg")
}

func TestSparkConnectPoolOffByDefault(t *testing.T) {
	objs := render(t, loadChart(t), nil)
	require.Empty(t, objs.StatefulSets)
	require.Empty(t, objs.PDBs)
}

func TestSparkConnectPool(t *testing.T) {
	objs := render(t, loadChart(t), map[string]any{"sparkConnect": map[string]any{
		"enabled": true, "replicas": 3, "conf": map[string]any{"spark.yarn.queue": "sparkconnect"},
	}})

	// The servers: their own StatefulSet, with requests and limits.
	require.Len(t, objs.StatefulSets, 1)
	sts := objs.StatefulSets[0]
	require.Equal(t, "hg-hourglass-spark-connect", sts.Name)
	require.EqualValues(t, 3, *sts.Spec.Replicas)
	pod := sts.Spec.Template.Spec
	c := pod.Containers[0]
	require.Equal(t, resource.MustParse("1"), c.Resources.Requests["cpu"])
	require.Equal(t, resource.MustParse("3Gi"), c.Resources.Limits["memory"])
	args := strings.Join(c.Command, " ")
	require.Contains(t, args, "org.apache.spark.sql.connect.service.SparkConnectServer")
	require.Contains(t, args, "spark.connect.session.manager.defaultSessionTimeout=30m")
	require.Contains(t, args, "spark.yarn.queue=sparkconnect")
	// Drain on stop, through the pool's admin port, within the grace period.
	pre := strings.Join(c.Lifecycle.PreStop.Exec.Command, " ")
	require.Contains(t, pre, "hourglass pool --admin-socket tcp://hg-hourglass-spark-connect-lb:15009 --timeout 600s drain $(POD_NAME)")
	require.EqualValues(t, 630, *pod.TerminationGracePeriodSeconds)
	require.Contains(t, strings.Join(c.Lifecycle.PostStart.Exec.Command, " "), "ready")

	// One PDB: one server at a time.
	require.Len(t, objs.PDBs, 1)
	require.Equal(t, 1, objs.PDBs[0].Spec.MaxUnavailable.IntValue())
	require.Equal(t, sts.Spec.Selector.MatchLabels, objs.PDBs[0].Spec.Selector.MatchLabels)

	// HAProxy: one replica (the stick table is in its memory), its config lists every pod.
	i := deployment(t, objs, "spark-connect-lb")
	lb := objs.Deployments[i]
	require.EqualValues(t, 1, *lb.Spec.Replicas)
	var cfg string
	for _, cm := range objs.ConfigMaps {
		if cm.Name == "hg-hourglass-spark-connect-lb" {
			cfg = cm.Data["haproxy.cfg"]
		}
	}
	require.NotEmpty(t, cfg)
	for n := range 3 {
		require.Contains(t, cfg, "server hg-hourglass-spark-connect-"+string(rune('0'+n))+" hg-hourglass-spark-connect-"+string(rune('0'+n))+".hg-hourglass-spark-connect-servers.")
	}
	require.Equal(t, 3, strings.Count(cfg, "\n    server "), "exactly one server line per pod")
	require.Contains(t, cfg, "stick on req.hdr(x-hourglass-session)")

	// The rendered config is valid for HAProxy itself, when it is installed here.
	if bin, err := exec.LookPath("haproxy"); err == nil {
		dir := t.TempDir()
		path := filepath.Join(dir, "haproxy.cfg")
		// The pods' names do not resolve outside the cluster: init-addr none lets
		// HAProxy start anyway, as it does in Kubernetes before the pods exist.
		require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
		cmd := exec.Command(bin, "-c", "-f", path)
		cmd.Env = append(os.Environ(), "SC_POOL_BIND=:25100", "SC_POOL_STATS_BIND=:25101", "SC_POOL_ADMIN_SOCKET=ipv4@127.0.0.1:25109")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}

	// Clients reach the pool through the service's h2c port.
	var found bool
	for _, s := range objs.Services {
		if s.Name == "hg-hourglass-spark-connect-lb" {
			found = true
			require.Equal(t, "kubernetes.io/h2c", *s.Spec.Ports[0].AppProtocol)
		}
	}
	require.True(t, found)
}

func TestSparkConnectPoolBadValues(t *testing.T) {
	for _, v := range []map[string]any{
		{"enabled": true, "replicas": 0},
		{"enabled": true, "replicas": 33},
		{"enabled": true, "sessionTimeout": "30 minutes"},
		{"enabled": true, "drainTimeoutSeconds": 0},
		{"enabled": true, "unknown": 1},
	} {
		_, err := Render(loadChart(t), map[string]any{"sparkConnect": v})
		require.Error(t, err, "%v", v)
	}
	// At the bound.
	_, err := Render(loadChart(t), map[string]any{"sparkConnect": map[string]any{"enabled": true, "replicas": 32}})
	require.NoError(t, err)
}

// With the Prometheus Operator, the pool is scraped: HAProxy's exporter
// (HourglassSparkConnectServerDown, PoolDown) and every server's driver
// (HourglassSparkConnectServerMemoryPressure), each endpoint's port present
// on a selected Service and on the pods behind it.
func TestSparkConnectPoolScraped(t *testing.T) {
	objs := render(t, loadChart(t), map[string]any{"sparkConnect": map[string]any{"enabled": true},
		"monitoring": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}})
	var sm *crd.ServiceMonitor
	for i := range objs.ServiceMonitors {
		if objs.ServiceMonitors[i].Name == "hg-hourglass-spark-connect" {
			sm = &objs.ServiceMonitors[i]
		}
	}
	require.NotNil(t, sm, "a ServiceMonitor for the pool")
	paths := map[string]string{}
	for _, ep := range sm.Spec.Endpoints {
		paths[ep.Port] = ep.Path
	}
	require.Equal(t, map[string]string{"metrics": "/metrics", "driver-metrics": "/metrics/prometheus/"}, paths)

	selected := map[string]bool{} // port names of the selected Services
	for _, svc := range objs.Services {
		match := true
		for k, v := range sm.Spec.Selector.MatchLabels {
			match = match && svc.Labels[k] == v
		}
		if !match {
			continue
		}
		for _, p := range svc.Spec.Ports {
			selected[p.Name] = true
		}
	}
	for port := range paths {
		require.True(t, selected[port], "no selected Service has port %s", port)
	}
	c := objs.StatefulSets[0].Spec.Template.Spec.Containers[0]
	require.True(t, slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "driver-metrics" }))
	args := strings.Join(c.Command, " ")
	require.Contains(t, args, "spark.metrics.namespace=spark_connect") // rules.yml reads metrics_spark_connect_driver_*
	require.Contains(t, args, "sink.prometheusServlet.path=/metrics/prometheus")

	// Without the pool, no ServiceMonitor for it.
	objs = render(t, loadChart(t), map[string]any{"monitoring": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}})
	for _, m := range objs.ServiceMonitors {
		require.NotEqual(t, "hg-hourglass-spark-connect", m.Name)
	}
}
