//go:build integration

package tenants_test

import (
	"context"
	"fmt"
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
	"github.com/hourglass-io/hourglass/internal/tenants"
)

// TestTenantAliasesIsolateTenants provisions two tenants on the real
// OpenSearch node and checks that each tenant's alias returns only its own
// metric documents, in this month's index and in next month's.
func TestTenantAliasesIsolateTenants(t *testing.T) {
	ctx := context.Background()
	es, err := esclient.New(esclient.Config{URLs: []string{stacktest.Get(t, "HOURGLASS_ES_URL")}})
	require.NoError(t, err)
	// A catalog with unique metric names, so the indices and aliases are this test's own.
	suffix := strings.ReplaceAll(stacktest.UniqueName("t")[2:], "-", "")
	shipped, err := os.ReadFile("../../metrics-jobs/catalog.yaml")
	require.NoError(t, err)
	renamed := regexp.MustCompile(`(?m)^(  - name: )([a-z_]+)$`).ReplaceAllString(string(shipped), "${1}${2}_"+suffix)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(path, []byte(renamed), 0o644))
	c, err := catalog.Load(path)
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, m := range c.Metrics {
			_ = es.Do(ctx, esapi.IndicesDeleteRequest{Index: []string{catalog.Alias(m.Name) + "-*"}}, "cleanup", nil)
			_ = es.Do(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: catalog.Alias(m.Name)}, "cleanup", nil)
		}
	})
	now := func() time.Time { return time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC) }
	cfg := essetup.DefaultConfig()
	cfg.Replicas = 0
	cfg.Now = now
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err = essetup.Setup(ctx, es, c, cfg, log)
	require.NoError(t, err)

	tenantA, tenantB := "acme-"+suffix, "globex-"+suffix
	p := &tenants.Provisioner{ES: es, Catalog: c, Log: log, Now: now}
	for _, tenant := range []string{tenantA, tenantB} {
		rep, err := p.Provision(ctx, tenant)
		require.NoError(t, err)
		require.Len(t, rep.Aliases, len(c.Metrics))
		require.Contains(t, rep.Role, "skipped: opensearch", "OpenSearch has no Elasticsearch security API")
	}
	rep, err := p.Provision(ctx, tenantA)
	require.NoError(t, err, "provisioning again changes nothing and does not fail")

	m, _ := c.Metric("request_rate_" + suffix)
	// Documents of both tenants in this month's and next month's index.
	var bulk strings.Builder
	counts := map[string]int{tenantA: 3, tenantB: 2}
	for _, month := range []time.Time{now(), time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)} {
		for tenant, n := range counts {
			for i := range n {
				start := month.Truncate(time.Minute).Add(time.Duration(i) * time.Minute)
				fmt.Fprintf(&bulk, `{"index":{"_index":%q,"_id":%q}}`+"\n", catalog.IndexName(m.Name, start),
					catalog.DocID(m.Name, time.Minute, start, tenant))
				fmt.Fprintf(&bulk, `{"metric":%q,"tenant":%q,"window":{"start":%q,"end":%q,"size":"1m"},"requests":%d,"samples":%d,"computed_at":%q}`+"\n",
					m.Name, tenant, start.Format(time.RFC3339), start.Add(time.Minute).Format(time.RFC3339), 10+i, 10+i, start.Format(time.RFC3339))
			}
		}
	}
	var bulkRes struct {
		Errors bool `json:"errors"`
	}
	require.NoError(t, es.Do(ctx, esapi.BulkRequest{Body: strings.NewReader(bulk.String()), Refresh: "true"}, "bulk", &bulkRes))
	require.False(t, bulkRes.Errors)

	for tenant, n := range counts {
		var res struct {
			Hits struct {
				Total struct {
					Value int `json:"value"`
				} `json:"total"`
				Hits []struct {
					Index  string         `json:"_index"`
					Source map[string]any `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		alias := tenants.Alias(m.Name, tenant)
		require.NoError(t, es.Do(ctx, esapi.SearchRequest{Index: []string{alias},
			Body: strings.NewReader(`{"size":100,"query":{"match_all":{}}}`)}, "search "+alias, &res))
		require.Equal(t, 2*n, res.Hits.Total.Value, "%s sees its own documents of both months", tenant)
		indices := map[string]bool{}
		for _, h := range res.Hits.Hits {
			require.Equal(t, tenant, h.Source["tenant"], "%s sees only its own documents", alias)
			indices[h.Index] = true
		}
		require.Len(t, indices, 2, "this month's index and next month's, created ahead")
		// Even a query asking for the other tenant finds nothing through the alias.
		other := tenantA
		if tenant == tenantA {
			other = tenantB
		}
		var count struct {
			Count int `json:"count"`
		}
		require.NoError(t, es.Do(ctx, esapi.CountRequest{Index: []string{alias},
			Body: strings.NewReader(fmt.Sprintf(`{"query":{"term":{"tenant":%q}}}`, other))}, "count", &count))
		require.Zero(t, count.Count)
	}
	// The shared alias still sees everyone.
	var all struct {
		Count int `json:"count"`
	}
	require.NoError(t, es.Do(ctx, esapi.CountRequest{Index: []string{catalog.Alias(m.Name)}}, "count shared", &all))
	require.Equal(t, 2*(counts[tenantA]+counts[tenantB]), all.Count)
	require.Contains(t, rep.Indices, catalog.IndexName(m.Name, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)))
}
