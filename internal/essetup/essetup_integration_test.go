//go:build integration

package essetup_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/essetup"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// TestSetupIdempotent runs es setup twice for a catalog with unique metric
// names and checks templates, aliases and the typed mapping of a new index.
func TestSetupIdempotent(t *testing.T) {
	es, err := esclient.New(esclient.Config{URLs: []string{stacktest.Get(t, "HOURGLASS_ES_URL")}})
	require.NoError(t, err)
	suffix := strings.ReplaceAll(stacktest.UniqueName("s")[2:], "-", "")
	shipped, err := os.ReadFile("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	renamed := regexp.MustCompile(`(?m)^(  - name: )([a-z_]+)$`).ReplaceAllString(string(shipped), "${1}${2}_"+suffix)
	require.NoError(t, os.WriteFile(path, []byte(renamed), 0o644))
	c, err := catalog.Load(path)
	require.NoError(t, err)
	ctx := context.Background()
	t.Cleanup(func() {
		for _, m := range c.Metrics {
			_ = es.Do(ctx, esapi.IndicesDeleteRequest{Index: []string{catalog.Alias(m.Name) + "-*"}}, "cleanup", nil)
			_ = es.Do(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: catalog.Alias(m.Name)}, "cleanup", nil)
		}
	})
	cfg := essetup.DefaultConfig()
	cfg.Replicas = 0
	cfg.Now = func() time.Time { return time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC) }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	rep, err := essetup.Setup(ctx, es, c, cfg, log)
	require.NoError(t, err)
	require.Len(t, rep.Created, len(c.Metrics))
	require.Len(t, rep.Templates, len(c.Metrics)+2)
	rep2, err := essetup.Setup(ctx, es, c, cfg, log)
	require.NoError(t, err, "a second run succeeds")
	require.Empty(t, rep2.Created, "and creates nothing new")

	m, _ := c.Metric("latency_" + suffix)
	// A new monthly index gets the typed mapping and joins the alias.
	next := catalog.IndexName(m.Name, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, es.Do(ctx, esapi.IndicesCreateRequest{Index: next}, "create "+next, nil))
	var got map[string]struct {
		Aliases  map[string]any `json:"aliases"`
		Mappings struct {
			Dynamic    string                    `json:"dynamic"`
			Properties map[string]map[string]any `json:"properties"`
		} `json:"mappings"`
	}
	require.NoError(t, es.Do(ctx, esapi.IndicesGetRequest{Index: []string{next}}, "get "+next, &got))
	require.Contains(t, got[next].Aliases, catalog.Alias(m.Name))
	require.Equal(t, "strict", got[next].Mappings.Dynamic)
	require.Equal(t, "double", got[next].Mappings.Properties["duration_ms_p99"]["type"])
	require.Equal(t, "long", got[next].Mappings.Properties["samples"]["type"])
	require.Equal(t, "keyword", got[next].Mappings.Properties["tenant"]["type"])
	var alias map[string]any
	require.NoError(t, es.Do(ctx, esapi.IndicesGetAliasRequest{Name: []string{catalog.Alias(m.Name)}}, "get alias", &alias))
	require.Len(t, alias, 2, "the alias covers both monthly indices: %v", alias)
	t.Logf("retention on %s %s: %s", rep.Flavor.Flavor, rep.Flavor.Version, rep.Retention)
}
