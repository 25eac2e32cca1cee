package chartcheck

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/hourglass-io/hourglass/charts/chartcheck/crd"
)

// composeAlertmanager is deploy/compose/alertmanager.yml: the route and the
// inhibition rules the local stack's Alertmanager is drilled with.
type composeAlertmanager struct {
	Route struct {
		Receiver       string   `json:"receiver"`
		GroupBy        []string `json:"group_by"`
		GroupWait      string   `json:"group_wait"`
		GroupInterval  string   `json:"group_interval"`
		RepeatInterval string   `json:"repeat_interval"`
	} `json:"route"`
	InhibitRules []struct {
		SourceMatchers []string `json:"source_matchers"`
		TargetMatchers []string `json:"target_matchers"`
		Equal          []string `json:"equal"`
	} `json:"inhibit_rules"`
}

// matcherText is Alertmanager's `name op value` matcher (value optionally quoted).
var matcherText = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$`)

func amMatchers(t *testing.T, texts []string) []crd.AMMatcher {
	t.Helper()
	var out []crd.AMMatcher
	for _, s := range texts {
		m := matcherText.FindStringSubmatch(s)
		require.NotNil(t, m, "matcher %q", s)
		out = append(out, crd.AMMatcher{Name: m[1], MatchType: m[2], Value: m[3]})
	}
	return out
}

func TestAlertmanagerConfigOffByDefault(t *testing.T) {
	require.Empty(t, render(t, loadChart(t), nil).AMConfigs)
}

// The chart's AlertmanagerConfig routes and inhibits as
// deploy/compose/alertmanager.yml does, matchers turned into the CRD's objects.
func TestAlertmanagerConfigEqualsCompose(t *testing.T) {
	b, err := os.ReadFile("../../deploy/compose/alertmanager.yml")
	require.NoError(t, err)
	var want composeAlertmanager
	require.NoError(t, yaml.Unmarshal(b, &want))
	require.NotEmpty(t, want.InhibitRules)

	for _, secret := range []string{"", "pager"} {
		objs := render(t, loadChart(t), map[string]any{"monitoring": map[string]any{"alertmanagerConfig": map[string]any{
			"enabled": true, "webhookURLSecret": map[string]any{"name": secret, "key": "url"}}}})
		require.Len(t, objs.AMConfigs, 1)
		spec := objs.AMConfigs[0].Spec
		require.Equal(t, &crd.AMRoute{Receiver: want.Route.Receiver, GroupBy: want.Route.GroupBy, GroupWait: want.Route.GroupWait,
			GroupInterval: want.Route.GroupInterval, RepeatInterval: want.Route.RepeatInterval}, spec.Route)
		require.Len(t, spec.InhibitRules, len(want.InhibitRules))
		for i, r := range want.InhibitRules {
			got := spec.InhibitRules[i]
			require.Equal(t, amMatchers(t, r.SourceMatchers), got.SourceMatch, "inhibit rule %d source", i)
			require.Equal(t, amMatchers(t, r.TargetMatchers), got.TargetMatch, "inhibit rule %d target", i)
			require.Equal(t, r.Equal, got.Equal, "inhibit rule %d equal", i)
		}
		require.Len(t, spec.Receivers, 1)
		require.Equal(t, want.Route.Receiver, spec.Receivers[0].Name)
		if secret == "" {
			require.Empty(t, spec.Receivers[0].WebhookConfigs, "no secret: a receiver without integrations")
			continue
		}
		require.Len(t, spec.Receivers[0].WebhookConfigs, 1)
		wh := spec.Receivers[0].WebhookConfigs[0]
		require.Equal(t, "pager", wh.URLSecret.Name)
		require.Equal(t, "url", wh.URLSecret.Key)
		require.True(t, *wh.SendResolved)
	}
}

// A regex matcher keeps its pattern unquoted, with its alternatives.
func TestAlertmanagerConfigRegexMatcher(t *testing.T) {
	objs := render(t, loadChart(t), map[string]any{"monitoring": map[string]any{"alertmanagerConfig": map[string]any{"enabled": true}}})
	require.Len(t, objs.AMConfigs, 1)
	var regex []crd.AMMatcher
	for _, r := range objs.AMConfigs[0].Spec.InhibitRules {
		for _, m := range r.TargetMatch {
			if m.MatchType == "=~" {
				regex = append(regex, m)
			}
		}
	}
	require.NotEmpty(t, regex)
	for _, m := range regex {
		require.Equal(t, "alertname", m.Name)
		require.NotContains(t, m.Value, `"`)
		require.Regexp(t, `^Hourglass[A-Za-z.*|]+$`, m.Value)
	}
}
