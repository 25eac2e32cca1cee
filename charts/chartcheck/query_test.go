package chartcheck

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// The query service, wired as log-peek is: the archive, a tokens Secret, an
// API port on a public Service and the admin port on the ClusterIP "-admin"
// Service alone; plus Kafka for its job events and a Spark Connect pool.
func TestQueryService(t *testing.T) {
	const tokens = "tokens:\n  - {name: sre, sha256: " + "0000000000000000000000000000000000000000000000000000000000000000" + ", role: admin}\n"
	objs := render(t, loadChart(t), map[string]any{
		"query": map[string]any{
			"enabled":          true,
			"sparkConnectPool": "sc://pool.spark.svc:15000",
			"tokens":           map[string]any{"content": tokens},
			"service":          map[string]any{"type": "LoadBalancer", "port": 443},
		},
		"monitoring": map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
	})
	checkAdminPortsPrivate(t, objs)
	checkWiring(t, objs)
	require.Len(t, objs.Services, 10, "ingress, logpeek and query public, seven admin")

	// One instance, never two at once: the jobs' state is in its memory.
	d := objs.Deployments[deployment(t, objs, "query")]
	require.EqualValues(t, 1, *d.Spec.Replicas)
	require.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type)
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	require.Equal(t, []string{"query", "--archive-root", "hdfs://namenode:8020/hourglass/archive",
		"--tokens", "/etc/hourglass/tokens/tokens.yaml", "--spark-connect-pool", "sc://pool.spark.svc:15000",
		"--brokers", "kafka:9092", "--api-addr", "0.0.0.0:8095", "--listen-addr", "0.0.0.0:9108"}, c.Args)
	require.Contains(t, c.Env, corev1.EnvVar{Name: "HOURGLASS_HDFS_USER", Value: "hourglass"}, "job records are written as the archive's user")
	require.Equal(t, []corev1.ContainerPort{{Name: "http", ContainerPort: 8095, Protocol: corev1.ProtocolTCP},
		{Name: "admin", ContainerPort: 9108, Protocol: corev1.ProtocolTCP}}, c.Ports)

	// The tokens file comes from the Secret the chart renders from the values.
	require.Equal(t, "hg-hourglass-query-tokens", spec.Volumes[1].Secret.SecretName)
	require.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: "tokens", MountPath: "/etc/hourglass/tokens", ReadOnly: true})
	var secret *corev1.Secret
	for i := range objs.Secrets {
		if objs.Secrets[i].Name == "hg-hourglass-query-tokens" {
			secret = &objs.Secrets[i]
		}
	}
	require.NotNil(t, secret)
	require.Equal(t, tokens, secret.StringData["tokens.yaml"])

	// The public Service: the API port alone, of the type and port the values give.
	pub := service(t, objs, "hg-hourglass-query")
	require.Equal(t, corev1.ServiceTypeLoadBalancer, pub.Spec.Type)
	require.Len(t, pub.Spec.Ports, 1)
	require.EqualValues(t, 443, pub.Spec.Ports[0].Port)
	require.Equal(t, "http", pub.Spec.Ports[0].TargetPort.StrVal)

	// The admin Service: cluster-internal, scraped by the ServiceMonitor as hourglass-query.
	adm := service(t, objs, "hg-hourglass-query-admin")
	require.Equal(t, corev1.ServiceTypeClusterIP, adm.Spec.Type)
	require.EqualValues(t, 9108, adm.Spec.Ports[0].Port)
	require.Equal(t, "hourglass-query", adm.Labels["hourglass.io/job"])
	require.Len(t, objs.ServiceMonitors, 1)
	require.True(t, matches(objs.ServiceMonitors[0].Spec.Selector.MatchLabels, adm.Labels), "the ServiceMonitor selects the query's admin Service")

	// An existing Secret instead: the chart renders none.
	objs = render(t, loadChart(t), map[string]any{"query": map[string]any{
		"enabled": true, "sparkConnectPool": "sc://pool.spark.svc:15000", "tokens": map[string]any{"existingSecret": "my-query-tokens"},
	}})
	require.Equal(t, "my-query-tokens", objs.Deployments[deployment(t, objs, "query")].Spec.Template.Spec.Volumes[1].Secret.SecretName)
	for _, s := range objs.Secrets {
		require.NotEqual(t, "hg-hourglass-query-tokens", s.Name)
	}
}

// Without a pool URL, the query service uses the chart's own pool: the
// HAProxy Service of sparkconnect.yaml, on its grpc port.
func TestQueryUsesTheChartsPool(t *testing.T) {
	objs := render(t, loadChart(t), map[string]any{
		"query":        map[string]any{"enabled": true},
		"sparkConnect": map[string]any{"enabled": true},
	})
	lb := service(t, objs, "hg-hourglass-spark-connect-lb")
	var grpc int32
	for _, p := range lb.Spec.Ports {
		if p.Name == "grpc" {
			grpc = p.Port
		}
	}
	require.NotZero(t, grpc)
	args := objs.Deployments[deployment(t, objs, "query")].Spec.Template.Spec.Containers[0].Args
	require.Equal(t, fmt.Sprintf("sc://%s:%d", lb.Name, grpc), flagValue(t, args, "--spark-connect-pool"))
}
