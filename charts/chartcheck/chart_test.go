package chartcheck

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/hourglass-io/hourglass/charts/chartcheck/crd"
)

const chartDir = "../hourglass"

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	require.NoError(t, err)
	return ch
}

func valuesFile(t *testing.T, path string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(path)
	require.NoError(t, err)
	return v
}

func render(t *testing.T, ch *chart.Chart, values map[string]any) *Objects {
	t.Helper()
	out, err := Render(ch, values)
	require.NoError(t, err)
	objs, err := Decode(out)
	require.NoError(t, err)
	return objs
}

// The chart's copies equal their sources (Helm packages only the chart
// directory, so they cannot be symlinks).
func TestChartFilesEqualTheirSources(t *testing.T) {
	for copyPath, source := range map[string]string{
		chartDir + "/files/catalog.yaml":     "../../metrics-jobs/catalog.yaml",
		chartDir + "/files/rules.yml":        "../../lag-monitor/rules.yml",
		chartDir + "/files/alertmanager.yml": "../../deploy/compose/alertmanager.yml",
	} {
		got, err := os.ReadFile(copyPath)
		require.NoError(t, err)
		want, err := os.ReadFile(source)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "%s differs from %s: cp %s %s", copyPath, source, strings.TrimPrefix(source, "../../"), strings.TrimPrefix(copyPath, "../"))
	}
}

type catalogFile struct {
	Metrics []struct {
		Name string `json:"name"`
	} `json:"metrics"`
}

func catalogMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	var c catalogFile
	require.NoError(t, yaml.Unmarshal(b, &c))
	var out []string
	for _, m := range c.Metrics {
		out = append(out, m.Name)
	}
	require.NotEmpty(t, out)
	return out
}

func rulesGroups(t *testing.T) []crd.RuleGroup {
	t.Helper()
	b, err := os.ReadFile("../../lag-monitor/rules.yml")
	require.NoError(t, err)
	var r crd.PrometheusRuleSpec
	require.NoError(t, yaml.UnmarshalStrict(b, &r))
	return r.Groups
}

func deployment(t *testing.T, objs *Objects, component string) int {
	t.Helper()
	for i, d := range objs.Deployments {
		if d.Labels["app.kubernetes.io/component"] == component {
			return i
		}
	}
	t.Fatalf("no deployment %s", component)
	return -1
}

func TestDefaultValues(t *testing.T) {
	objs := render(t, loadChart(t), nil)
	var components []string
	for _, d := range objs.Deployments {
		components = append(components, d.Labels["app.kubernetes.io/component"])
	}
	// The query service is off by default, as is the Spark Connect pool it needs.
	require.ElementsMatch(t, []string{"ingress", "router", "archiver", "indexer", "lagmon", "logpeek"}, components)
	require.Len(t, objs.Services, 8, "ingress and logpeek public, six admin")
	checkAdminPortsPrivate(t, objs)
	require.Len(t, objs.HPAs, 1)
	require.Equal(t, "hg-hourglass-ingress", objs.HPAs[0].Spec.ScaleTargetRef.Name)
	require.Nil(t, objs.Deployments[deployment(t, objs, "ingress")].Spec.Replicas, "the HPA owns the ingress's replicas")
	require.Empty(t, objs.ServiceMonitors, "optional, off by default")
	require.Empty(t, objs.PrometheusRules, "optional, off by default")
	require.Empty(t, objs.CronJobs, "no tenants by default")
	require.Len(t, objs.Jobs, 1, "es setup hook")

	// The catalog ConfigMap carries the catalog; router and lag monitor read it.
	require.Len(t, objs.ConfigMaps, 1)
	want, err := os.ReadFile("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	require.Equal(t, string(want), objs.ConfigMaps[0].Data["catalog.yaml"])
	router := objs.Deployments[deployment(t, objs, "router")].Spec.Template.Spec
	require.Contains(t, router.Containers[0].Args, "/etc/hourglass/catalog/catalog.yaml")
	require.Equal(t, objs.ConfigMaps[0].Name, router.Volumes[1].ConfigMap.Name)

	// API keys and tokens come from Secrets the chart creates from the values.
	secrets := map[string]corev1.Secret{}
	for _, s := range objs.Secrets {
		secrets[s.Name] = s
	}
	for _, c := range []string{"ingress", "logpeek"} {
		spec := objs.Deployments[deployment(t, objs, c)].Spec.Template.Spec
		var secretVolumes int
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				secretVolumes++
				require.Contains(t, secrets, v.Secret.SecretName, "%s mounts a Secret the chart renders", c)
			}
		}
		require.Equal(t, 1, secretVolumes, c)
	}

	logpeek := objs.Deployments[deployment(t, objs, "logpeek")].Spec.Template.Spec.Containers[0].Args
	require.Equal(t, "268435456", flagValue(t, logpeek, "--page-cache-bytes"), "256 MiB, an integer (not 2.68e+08)")

	checkWiring(t, objs)
	checkSparkApps(t, objs)
}

func TestProductionValues(t *testing.T) {
	objs := render(t, loadChart(t), valuesFile(t, chartDir+"/ci/production-values.yaml"))
	require.Len(t, objs.Deployments, 7)
	require.Empty(t, objs.Secrets, "every secret is an existing one in production")
	for _, d := range objs.Deployments {
		require.True(t, strings.HasPrefix(d.Spec.Template.Spec.Containers[0].Image, "registry.example.com/hourglass/hourglass:1.4.2"))
		require.Equal(t, "registry-example", d.Spec.Template.Spec.ImagePullSecrets[0].Name)
		require.Equal(t, "hourglass", d.Spec.Template.Spec.NodeSelector["workload"])
	}
	ing := objs.Deployments[deployment(t, objs, "ingress")].Spec.Template.Spec
	require.Equal(t, "hourglass-ingress-keys", ing.Volumes[1].Secret.SecretName)
	require.Equal(t, int32(30), objs.HPAs[0].Spec.MaxReplicas)
	idx := objs.Deployments[deployment(t, objs, "indexer")].Spec.Template.Spec.Containers[0]
	require.Equal(t, "hourglass-es-credentials", idx.Env[1].ValueFrom.SecretKeyRef.Name)
	query := objs.Deployments[deployment(t, objs, "query")].Spec.Template.Spec
	require.Equal(t, "sc://spark-connect-lb.spark.svc:15000", flagValue(t, query.Containers[0].Args, "--spark-connect-pool"))
	require.Equal(t, "kafka-0.kafka:9092,kafka-1.kafka:9092,kafka-2.kafka:9092", flagValue(t, query.Containers[0].Args, "--brokers"))
	require.Equal(t, "hourglass-query-tokens", query.Volumes[1].Secret.SecretName)

	// ServiceMonitor: every service's admin port, job label hourglass-<component>.
	require.Len(t, objs.ServiceMonitors, 1)
	require.Equal(t, "hourglass.io/job", objs.ServiceMonitors[0].Spec.JobLabel)
	require.Equal(t, "admin", objs.ServiceMonitors[0].Spec.Endpoints[0].Port)
	require.Equal(t, "true", objs.ServiceMonitors[0].Spec.Selector.MatchLabels["hourglass.io/admin"])
	checkAdminPortsPrivate(t, objs)

	// PrometheusRule = lag-monitor/rules.yml; with the monitor sending its
	// status alerts itself (alertmanagerURL set), without the status group.
	require.Len(t, objs.PrometheusRules, 1)
	var want []crd.RuleGroup
	for _, g := range rulesGroups(t) {
		if g.Name != "hourglass-lagmon-status" {
			want = append(want, g)
		}
	}
	require.Equal(t, want, objs.PrometheusRules[0].Spec.Groups)
	lagmon := objs.Deployments[deployment(t, objs, "lagmon")].Spec.Template.Spec.Containers[0].Args
	require.Contains(t, lagmon, "http://alertmanager-operated.monitoring.svc:9093")

	// The tenants CronJob provisions every tenant, with Kibana.
	require.Len(t, objs.CronJobs, 1)
	args := objs.CronJobs[0].Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args
	require.Equal(t, []string{"provision", "acme", "globex", "initech"}, args[len(args)-4:])
	require.Contains(t, args, "https://kibana.example.com")

	checkWiring(t, objs)
	checkSparkApps(t, objs)
	require.Equal(t, int32(3), *objs.SparkApps[0].Spec.Executor.Instances)
}

func TestPrometheusRuleCarriesEveryRuleByDefault(t *testing.T) {
	objs := render(t, loadChart(t), map[string]any{"monitoring": map[string]any{"prometheusRule": map[string]any{"enabled": true}}})
	require.Len(t, objs.PrometheusRules, 1)
	require.Equal(t, rulesGroups(t), objs.PrometheusRules[0].Spec.Groups)
}

// checkAdminPortsPrivate: admin ports (/metrics, the lag monitor's status
// page and /v1/status, which list tenant names) are only on ClusterIP
// "-admin" Services, one per component; public Services carry no admin port.
func checkAdminPortsPrivate(t *testing.T, objs *Objects) {
	t.Helper()
	var admins, components []string
	for _, s := range objs.Services {
		hasAdmin := slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "admin" })
		if s.Labels["hourglass.io/admin"] == "true" {
			admins = append(admins, s.Labels["app.kubernetes.io/component"])
			require.True(t, hasAdmin, s.Name)
			require.Len(t, s.Spec.Ports, 1, "admin Service %s carries the admin port alone", s.Name)
			require.Equal(t, corev1.ServiceTypeClusterIP, s.Spec.Type, "admin Service %s is cluster-internal", s.Name)
			require.Equal(t, "hourglass-"+s.Labels["app.kubernetes.io/component"], s.Labels["hourglass.io/job"])
			continue
		}
		require.False(t, hasAdmin, "public Service %s must not expose an admin port", s.Name)
	}
	for _, d := range objs.Deployments {
		components = append(components, d.Labels["app.kubernetes.io/component"])
	}
	require.ElementsMatch(t, components, admins, "one admin Service per component")
}

// service returns the rendered Service named name.
func service(t *testing.T, objs *Objects, name string) corev1.Service {
	t.Helper()
	for _, s := range objs.Services {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no service %s", name)
	return corev1.Service{}
}

// flagValue returns the argument after flag in args.
func flagValue(t *testing.T, args []string, flag string) string {
	t.Helper()
	i := slices.Index(args, flag)
	require.True(t, i >= 0 && i+1 < len(args), "%s in %v", flag, args)
	return args[i+1]
}

// checkWiring: each Service selects the pods of one Deployment and targets a
// named port of its container; probes use the admin port.
func checkWiring(t *testing.T, objs *Objects) {
	t.Helper()
	for _, s := range objs.Services {
		var matched int
		for _, d := range objs.Deployments {
			if !matches(s.Spec.Selector, d.Spec.Template.Labels) {
				continue
			}
			matched++
			require.Equal(t, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
			ports := d.Spec.Template.Spec.Containers[0].Ports
			for _, p := range s.Spec.Ports {
				require.True(t, slices.ContainsFunc(ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal }),
					"service %s port %s targets a container port", s.Name, p.Name)
			}
		}
		require.Equal(t, 1, matched, "service %s selects exactly one deployment", s.Name)
	}
	for _, d := range objs.Deployments {
		c := d.Spec.Template.Spec.Containers[0]
		require.Equal(t, "admin", c.ReadinessProbe.HTTPGet.Port.StrVal)
		require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	}
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// checkSparkApps: one SparkApplication per catalog metric, whose driver's init
// container renders that metric's spec where the driver reads it.
func checkSparkApps(t *testing.T, objs *Objects) {
	t.Helper()
	metrics := catalogMetrics(t)
	require.Len(t, objs.SparkApps, len(metrics))
	for i, m := range metrics {
		app := objs.SparkApps[i]
		require.Equal(t, "hg-hourglass-metrics-"+strings.ReplaceAll(m, "_", "-"), app.Name)
		require.Equal(t, "Python", app.Spec.Type)
		require.Equal(t, "4.0.1", app.Spec.SparkVersion)
		specPath := "/var/run/hourglass/specs/" + m + ".json"
		require.Equal(t, []string{"stream", "--spec", specPath}, app.Spec.Arguments[:3])
		init := app.Spec.Driver.InitContainers[0]
		require.Equal(t, []string{"catalog", "--catalog", "/etc/hourglass/catalog/catalog.yaml", "render", "spark", "--out", "/var/run/hourglass/specs", m}, init.Args)
		require.Equal(t, init.VolumeMounts[1].MountPath, app.Spec.Driver.VolumeMounts[0].MountPath)
	}
}

// A new catalog metric gets its SparkApplication with no template change.
func TestNewMetricGetsItsSparkApplication(t *testing.T) {
	ch := loadChart(t)
	for _, f := range ch.Files {
		if f.Name == "files/catalog.yaml" {
			f.Data = append(slices.Clone(f.Data), []byte("\n  - name: slow_api\n    aggregations:\n      - {name: slow, fn: count}\n")...)
		}
	}
	objs := render(t, ch, nil)
	require.Len(t, objs.SparkApps, len(catalogMetrics(t))+1)
	require.Equal(t, "hg-hourglass-metrics-slow-api", objs.SparkApps[len(objs.SparkApps)-1].Name)
}

// Broken inputs: values the schema refuses, and manifests with a field the
// API type does not have.
func TestBrokenValuesAreRefused(t *testing.T) {
	cases := map[string]struct {
		values map[string]any
		want   string
	}{
		"unknown top-level key":  {map[string]any{"ingres": map[string]any{}}, "ingres"},
		"wrong type":             {map[string]any{"router": map[string]any{"replicas": "two"}}, "replicas"},
		"unknown sink":           {map[string]any{"ingress": map[string]any{"sink": "http"}}, "sink"},
		"bad tenant":             {map[string]any{"tenants": map[string]any{"names": []any{"Acme"}}}, "names"},
		"unknown ingress key":    {map[string]any{"ingress": map[string]any{"replica": 3}}, "replica"},
		"bad Spark memory":       {map[string]any{"spark": map[string]any{"driver": map[string]any{"cores": 1, "memory": "1GB"}}}, "memory"},
		"password without value": {map[string]any{"elasticsearch": map[string]any{"username": "hg"}}, "elasticsearch.password is required"},
		"query without a pool":   {map[string]any{"query": map[string]any{"enabled": true}}, "query.sparkConnectPool is required when sparkConnect.enabled is false"},
		"query pool not sc://":   {map[string]any{"query": map[string]any{"enabled": true, "sparkConnectPool": "http://pool:15000"}}, "sparkConnectPool"},
		"query pool with params": {map[string]any{"query": map[string]any{"enabled": true, "sparkConnectPool": "sc://pool:15000/;user_id=x"}}, "sparkConnectPool"},
		"query replicas":         {map[string]any{"query": map[string]any{"replicas": 2}}, "replicas"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Render(loadChart(t), tc.values)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestUnknownManifestFieldsFail(t *testing.T) {
	cases := map[string]struct {
		manifest, want string
	}{
		"deployment": {`apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}
`, `unknown field "spec.replica"`},
		"container field misplaced": {`apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i, livenessprobe: {}}]}}
`, `unknown field "spec.template.spec.containers[0].livenessprobe"`},
		"hpa v1 field in v2": {`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: x}
spec: {scaleTargetRef: {kind: Deployment, name: x}, maxReplicas: 3, targetCPUUtilizationPercentage: 70}
`, `unknown field "spec.targetCPUUtilizationPercentage"`},
		"spark application": {`apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata: {name: x}
spec: {type: Python, sparkVersion: "4.0.1", driver: {cores: 1, serviceaccount: spark}, executor: {instances: 1}}
`, `unknown field "spec.driver.serviceaccount"`},
		"prometheus rule": {`apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec: {groups: [{name: g, rules: [{alert: A, expr: up == 0, severity: critical}]}]}
`, `unknown field "spec.groups[0].rules[0].severity"`},
		"unknown kind": {`apiVersion: v1
kind: Pod
metadata: {name: x}
`, `not a kind this check knows`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(map[string]string{"hourglass/templates/broken.yaml": tc.manifest})
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	t.Run("through the chart", func(t *testing.T) {
		ch := loadChart(t)
		for _, tpl := range ch.Templates {
			if tpl.Name == "templates/hpa.yaml" {
				tpl.Data = []byte(strings.Replace(string(tpl.Data), "  minReplicas:", "  minReplica:", 1))
			}
		}
		out, err := Render(ch, nil)
		require.NoError(t, err)
		_, err = Decode(out)
		require.ErrorContains(t, err, `unknown field "spec.minReplica"`)
	})
}
