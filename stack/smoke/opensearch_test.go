//go:build integration

package smoke

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// openSearchDoc is what the smoke test indexes; its JSON field names match the
// template's typed mappings.
type openSearchDoc struct {
	Host    string  `json:"host"`    // keyword
	Bytes   int64   `json:"bytes"`   // long
	Latency float64 `json:"latency"` // double
	TS      string  `json:"ts"`      // date
}

// TestOpenSearchSmoke drives the stack's search engine through internal/esclient
// (go-elasticsearch's esapi on a transport without the product check): a
// composable index template with typed mappings, a bulk of 1000 documents with
// explicit ids, then a term query, a count and a sum aggregation that must equal
// what was indexed; re-indexing the same ids must not duplicate, and a document
// the mapping rejects must be reported by Bulk.
func TestOpenSearchSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := esclient.New(esclient.Config{URLs: []string{stacktest.Get(t, "HOURGLASS_ES_URL")}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })

	info, err := c.Flavor(ctx)
	require.NoError(t, err)
	require.Equal(t, esclient.Flavor(stacktest.Get(t, "HOURGLASS_ES_FLAVOR")), info.Flavor)
	t.Logf("engine: %s %s (cluster %s)", info.Flavor, info.Version, info.ClusterName)

	name := stacktest.UniqueName("smoke-search")
	index := name + "-000001"

	template := `{
	  "index_patterns": ["` + name + `-*"],
	  "priority": 500,
	  "template": {
	    "settings": {"number_of_shards": 1, "number_of_replicas": 0},
	    "mappings": {
	      "dynamic": "strict",
	      "properties": {
	        "host":    {"type": "keyword"},
	        "bytes":   {"type": "long"},
	        "latency": {"type": "double"},
	        "ts":      {"type": "date"}
	      }
	    }
	  }
	}`
	require.NoError(t, c.Do(ctx, esapi.IndicesPutIndexTemplateRequest{
		Name: name, Body: strings.NewReader(template),
	}, "put index template "+name, nil))
	t.Cleanup(func() {
		ctx := context.Background()
		err := c.Do(ctx, esapi.IndicesDeleteRequest{Index: []string{index}}, "delete index "+index, nil)
		if err != nil && !esclient.HasStatus(err, http.StatusNotFound) {
			t.Error(err)
		}
		if err := c.Do(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: name},
			"delete index template "+name, nil); err != nil {
			t.Error(err)
		}
	})

	// 1000 documents over 7 hosts; the expected answers are computed beside them.
	const n, hosts = 1000, 7
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	docs := make(map[string]openSearchDoc, n)
	items := make([]esclient.BulkItem, 0, n)
	var wantBytes int64
	var wantLatency float64
	wantHost3, wantHost3Bytes := 0, int64(0)
	for i := range n {
		d := openSearchDoc{
			Host:    fmt.Sprintf("host-%d", i%hosts),
			Bytes:   int64(i) * 10,
			Latency: float64(i) * 0.5, // sums exactly in float64
			TS:      base.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
		}
		id := fmt.Sprintf("doc-%04d", i)
		docs[id] = d
		items = append(items, esclient.BulkItem{ID: id, Doc: d})
		wantBytes += d.Bytes
		wantLatency += d.Latency
		if d.Host == "host-3" {
			wantHost3++
			wantHost3Bytes += d.Bytes
		}
	}

	res, err := c.Bulk(ctx, index, items)
	require.NoError(t, err)
	require.Len(t, res.Items, n)
	for _, it := range res.Items {
		require.Equal(t, "created", it.Result, it.ID)
		require.Equal(t, index, it.Index)
	}
	refresh := func() {
		require.NoError(t, c.Do(ctx, esapi.IndicesRefreshRequest{Index: []string{index}}, "refresh "+index, nil))
	}
	refresh()

	// The template's mappings and settings were applied to the index.
	var mapping map[string]struct {
		Mappings struct {
			Dynamic    string                           `json:"dynamic"`
			Properties map[string]struct{ Type string } `json:"properties"`
		} `json:"mappings"`
	}
	require.NoError(t, c.Do(ctx, esapi.IndicesGetMappingRequest{Index: []string{index}}, "get mapping of "+index, &mapping))
	require.Equal(t, "strict", mapping[index].Mappings.Dynamic)
	got := map[string]string{}
	for field, p := range mapping[index].Mappings.Properties {
		got[field] = p.Type
	}
	require.Equal(t, map[string]string{"host": "keyword", "bytes": "long", "latency": "double", "ts": "date"}, got)
	var settings map[string]struct {
		Settings struct {
			Index struct {
				Shards   string `json:"number_of_shards"`
				Replicas string `json:"number_of_replicas"`
			} `json:"index"`
		} `json:"settings"`
	}
	require.NoError(t, c.Do(ctx, esapi.IndicesGetSettingsRequest{Index: []string{index}}, "get settings of "+index, &settings))
	require.Equal(t, "1", settings[index].Settings.Index.Shards)
	require.Equal(t, "0", settings[index].Settings.Index.Replicas)

	count := func() int64 {
		var out struct {
			Count int64 `json:"count"`
		}
		require.NoError(t, c.Do(ctx, esapi.CountRequest{Index: []string{index}}, "count "+index, &out))
		return out.Count
	}
	require.EqualValues(t, n, count())

	type searchAnswer struct {
		Hits struct {
			Total struct {
				Value    int64  `json:"value"`
				Relation string `json:"relation"`
			} `json:"total"`
			Hits []struct {
				ID     string        `json:"_id"`
				Source openSearchDoc `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
		Aggregations struct {
			Bytes   struct{ Value float64 } `json:"bytes"`
			Latency struct{ Value float64 } `json:"latency"`
		} `json:"aggregations"`
	}
	search := func(query string, size int) searchAnswer {
		var out searchAnswer
		body := `{"size": ` + fmt.Sprint(size) + `, "track_total_hits": true, "query": ` + query + `,
		  "aggs": {"bytes": {"sum": {"field": "bytes"}}, "latency": {"sum": {"field": "latency"}}}}`
		require.NoError(t, c.Do(ctx, esapi.SearchRequest{Index: []string{index}, Body: strings.NewReader(body)},
			"search "+index, &out))
		require.Equal(t, "eq", out.Hits.Total.Relation)
		return out
	}

	// A sum aggregation over everything.
	all := search(`{"match_all": {}}`, 0)
	require.EqualValues(t, n, all.Hits.Total.Value)
	require.Equal(t, float64(wantBytes), all.Aggregations.Bytes.Value)
	require.Equal(t, wantLatency, all.Aggregations.Latency.Value)

	// A term query on the keyword field returns exactly the documents indexed for it.
	host3 := search(`{"term": {"host": "host-3"}}`, n)
	require.EqualValues(t, wantHost3, host3.Hits.Total.Value)
	require.Len(t, host3.Hits.Hits, wantHost3)
	require.Equal(t, float64(wantHost3Bytes), host3.Aggregations.Bytes.Value)
	for _, h := range host3.Hits.Hits {
		require.Equal(t, docs[h.ID], h.Source, h.ID)
	}

	// Re-indexing the same ids replaces the documents: no duplicates.
	res, err = c.Bulk(ctx, index, items)
	require.NoError(t, err)
	for _, it := range res.Items {
		require.Equal(t, "updated", it.Result, it.ID)
		require.EqualValues(t, 2, it.Version, it.ID)
	}
	refresh()
	require.EqualValues(t, n, count())
	require.Equal(t, float64(wantBytes), search(`{"match_all": {}}`, 0).Aggregations.Bytes.Value)

	// Documents the mapping rejects are reported item by item, never dropped.
	res, err = c.Bulk(ctx, index, []esclient.BulkItem{
		{ID: "bad-type", Doc: map[string]any{"host": "h", "bytes": "not a number"}},
		{ID: "doc-0000", Doc: docs["doc-0000"]},
		{ID: "bad-field", Doc: map[string]any{"host": "h", "unknown": 1}},
	})
	var be *esclient.BulkError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 2)
	require.Equal(t, "bad-type", be.Failed[0].ID)
	require.Contains(t, be.Failed[0].Error, "mapper_parsing_exception")
	require.Equal(t, "bad-field", be.Failed[1].ID)
	require.Contains(t, be.Failed[1].Error, "strict_dynamic_mapping_exception")
	require.Equal(t, "updated", res.Items[1].Result)
	refresh()
	require.EqualValues(t, n, count())

	// A failing request is an *esclient.Error with the server's type and reason.
	err = c.Do(ctx, esapi.IndicesCreateRequest{Index: index}, "create index "+index, nil)
	require.True(t, esclient.HasStatus(err, http.StatusBadRequest), "%v", err)
	require.ErrorContains(t, err, "resource_already_exists_exception")
}
