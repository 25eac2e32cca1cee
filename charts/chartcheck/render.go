// Package chartcheck renders the Helm chart charts/hourglass with the Helm Go
// SDK and decodes every manifest strictly into Kubernetes API types (and into
// local mirrors of the spark-operator and Prometheus Operator CRD fields the
// chart uses), so an unknown or misplaced field fails.
package chartcheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hourglass-io/hourglass/charts/chartcheck/crd"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Render renders the chart for the values as `helm install --dry-run` would:
// the values are coalesced with the chart's defaults and validated against
// values.schema.json. It returns the manifests by template name.
func Render(ch *chart.Chart, values map[string]any) (map[string]string, error) {
	opts := chartutil.ReleaseOptions{Name: "hg", Namespace: "hourglass", Revision: 1, IsInstall: true}
	vals, err := chartutil.ToRenderValues(ch, values, opts, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("chart values: %w", err)
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("render chart: %w", err)
	}
	return out, nil
}

// Objects are the decoded manifests of a rendering, by kind.
type Objects struct {
	Deployments      []appsv1.Deployment
	Services         []corev1.Service
	ConfigMaps       []corev1.ConfigMap
	Secrets          []corev1.Secret
	HPAs             []autoscalingv2.HorizontalPodAutoscaler
	Jobs             []batchv1.Job
	CronJobs         []batchv1.CronJob
	ServiceMonitors  []crd.ServiceMonitor
	PrometheusRules  []crd.PrometheusRule
	AMConfigs        []crd.AlertmanagerConfig
	SparkApps        []crd.SparkApplication
	StatefulSets     []appsv1.StatefulSet
	PDBs             []policyv1.PodDisruptionBudget
	ManifestsDecoded int
}

// Decode splits the rendered templates into documents and decodes each
// strictly into its API type. Every problem is reported with its template.
func Decode(rendered map[string]string) (*Objects, error) {
	objs := &Objects{}
	var errs []string
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(pathBase(name), "_") {
			continue
		}
		docs := releaseutil.SplitManifests(rendered[name])
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return compareManifestKeys(a, b) })
		for _, k := range keys {
			doc := docs[k]
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if err := objs.decodeOne([]byte(doc)); err != nil {
				errs = append(errs, fmt.Sprintf("%s (%s): %v", name, k, err))
			}
		}
	}
	if len(errs) > 0 {
		return objs, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return objs, nil
}

func pathBase(p string) string { return p[strings.LastIndex(p, "/")+1:] }

func compareManifestKeys(a, b string) int {
	// manifest-N keys: by N.
	var x, y int
	fmt.Sscanf(a, "manifest-%d", &x)
	fmt.Sscanf(b, "manifest-%d", &y)
	return x - y
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func (o *Objects) decodeOne(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	data, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	// The API server's strict decoding: case-sensitive field names, unknown
	// and duplicate fields are errors, reported with their path.
	strict := func(into any) error {
		strictErrs, err := kjson.UnmarshalStrict(data, into)
		if err != nil {
			return fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
		}
		if len(strictErrs) > 0 {
			return fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, errors.Join(strictErrs...))
		}
		o.ManifestsDecoded++
		return nil
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		var d appsv1.Deployment
		if err := strict(&d); err != nil {
			return err
		}
		o.Deployments = append(o.Deployments, d)
	case "v1 Service":
		var s corev1.Service
		if err := strict(&s); err != nil {
			return err
		}
		o.Services = append(o.Services, s)
	case "v1 ConfigMap":
		var c corev1.ConfigMap
		if err := strict(&c); err != nil {
			return err
		}
		o.ConfigMaps = append(o.ConfigMaps, c)
	case "v1 Secret":
		var s corev1.Secret
		if err := strict(&s); err != nil {
			return err
		}
		o.Secrets = append(o.Secrets, s)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		var h autoscalingv2.HorizontalPodAutoscaler
		if err := strict(&h); err != nil {
			return err
		}
		o.HPAs = append(o.HPAs, h)
	case "batch/v1 Job":
		var j batchv1.Job
		if err := strict(&j); err != nil {
			return err
		}
		o.Jobs = append(o.Jobs, j)
	case "batch/v1 CronJob":
		var j batchv1.CronJob
		if err := strict(&j); err != nil {
			return err
		}
		o.CronJobs = append(o.CronJobs, j)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		var s crd.ServiceMonitor
		if err := strict(&s); err != nil {
			return err
		}
		o.ServiceMonitors = append(o.ServiceMonitors, s)
	case "monitoring.coreos.com/v1 PrometheusRule":
		var r crd.PrometheusRule
		if err := strict(&r); err != nil {
			return err
		}
		o.PrometheusRules = append(o.PrometheusRules, r)
	case "monitoring.coreos.com/v1alpha1 AlertmanagerConfig":
		var c crd.AlertmanagerConfig
		if err := strict(&c); err != nil {
			return err
		}
		o.AMConfigs = append(o.AMConfigs, c)
	case "sparkoperator.k8s.io/v1beta2 SparkApplication":
		var s crd.SparkApplication
		if err := strict(&s); err != nil {
			return err
		}
		o.SparkApps = append(o.SparkApps, s)
	case "apps/v1 StatefulSet":
		var st appsv1.StatefulSet
		if err := strict(&st); err != nil {
			return err
		}
		o.StatefulSets = append(o.StatefulSets, st)
	case "policy/v1 PodDisruptionBudget":
		var p policyv1.PodDisruptionBudget
		if err := strict(&p); err != nil {
			return err
		}
		o.PDBs = append(o.PDBs, p)
	default:
		return fmt.Errorf("apiVersion %q kind %q: not a kind this check knows (add it)", tm.APIVersion, tm.Kind)
	}
	return nil
}
