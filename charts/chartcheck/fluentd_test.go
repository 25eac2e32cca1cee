package chartcheck

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// ingressFluentd returns the ingress container and pod volumes.
func ingressFluentd(t *testing.T, objs *Objects) (corev1.Container, []corev1.Volume) {
	t.Helper()
	spec := objs.Deployments[deployment(t, objs, "ingress")].Spec.Template.Spec
	return spec.Containers[0], spec.Volumes
}

func sharedKeyRef(t *testing.T, c corev1.Container) *corev1.SecretKeySelector {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == "HOURGLASS_FLUENTD_SHARED_KEY" {
			require.NotNil(t, e.ValueFrom, "the shared key comes from a Secret, never a literal")
			require.NotNil(t, e.ValueFrom.SecretKeyRef)
			return e.ValueFrom.SecretKeyRef
		}
	}
	t.Fatal("the ingress gets no HOURGLASS_FLUENTD_SHARED_KEY")
	return nil
}

// TestFluentdForwardSecuredByDefault: with the default values the ingress's
// forward hop uses TLS and a shared key from a Secret the chart makes with a
// random key (64 characters), kept on upgrade.
func TestFluentdForwardSecuredByDefault(t *testing.T) {
	objs := render(t, loadChart(t), nil)
	c, vols := ingressFluentd(t, objs)
	require.Contains(t, c.Args, "--fluentd-tls=true")
	require.NotContains(t, c.Args, "--fluentd-ca-file", "no CA given: the system roots")
	ref := sharedKeyRef(t, c)
	require.Equal(t, "shared_key", ref.Key)
	var secret *corev1.Secret
	for i := range objs.Secrets {
		if objs.Secrets[i].Name == ref.Name {
			secret = &objs.Secrets[i]
		}
	}
	require.NotNil(t, secret, "the chart renders the Secret %s", ref.Name)
	require.Len(t, secret.Data["shared_key"], 64)
	require.Equal(t, "keep", secret.Annotations["helm.sh/resource-policy"])
	again := render(t, loadChart(t), nil)
	for _, s := range again.Secrets {
		if s.Name == ref.Name {
			require.NotEqual(t, secret.Data["shared_key"], s.Data["shared_key"], "random per install, not a well-known default")
		}
	}
	for _, v := range vols {
		require.NotEqual(t, "fluentd-ca", v.Name)
	}
}

func TestFluentdForwardValues(t *testing.T) {
	const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	for _, tc := range []struct {
		name      string
		values    map[string]any
		args      []string // in the ingress's args
		secret    string   // the shared key's Secret
		configMap string   // the CA's ConfigMap ("" : none)
		rendered  bool     // the chart renders the CA ConfigMap
	}{
		{name: "production", values: valuesFile(t, chartDir+"/ci/production-values.yaml"),
			args:   []string{"--fluentd-tls=true", "--fluentd-server-name", "fluentd-aggregator.logging.svc", "--fluentd-ca-file"},
			secret: "fluentd-forward", configMap: "logging-ca"},
		{name: "CA in the values", values: map[string]any{"ingress": map[string]any{"fluentdForward": map[string]any{"tls": true, "caCert": pem}}},
			args: []string{"--fluentd-ca-file", "/etc/hourglass/fluentd-ca/ca.crt"}, secret: "hg-hourglass-fluentd-forward",
			configMap: "hg-hourglass-fluentd-ca", rendered: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, loadChart(t), tc.values)
			c, vols := ingressFluentd(t, objs)
			for _, a := range tc.args {
				require.Contains(t, c.Args, a)
			}
			require.Equal(t, tc.secret, sharedKeyRef(t, c).Name)
			var mounted string
			for _, v := range vols {
				if v.Name == "fluentd-ca" {
					mounted = v.ConfigMap.Name
				}
			}
			require.Equal(t, tc.configMap, mounted)
			var ca *corev1.ConfigMap
			for i := range objs.ConfigMaps {
				if objs.ConfigMaps[i].Name == tc.configMap {
					ca = &objs.ConfigMaps[i]
				}
			}
			if tc.rendered {
				require.NotNil(t, ca)
				require.Equal(t, pem, ca.Data["ca.crt"])
			} else {
				require.Nil(t, ca, "an existing ConfigMap is not rendered")
			}
		})
	}
}
