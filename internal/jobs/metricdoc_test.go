//go:build integration || bench

package jobs_test

import (
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
)

// metricDoc is the document a metric job writes for one window of one tenant
// of a metric grouped by tenant whose outputs are output alone (request_rate:
// a count, so samples = the value), for writing history straight into
// Elasticsearch: catalog's index, _id and field names. The window's keys are
// those of catalog's DocumentSQL (start, end, size); the baseline integration
// test checks the shape against a document the job wrote.
func metricDoc(m catalog.Metric, output string, size time.Duration, start time.Time, tenant string, v int64) esclient.BulkItem {
	doc := map[string]any{
		catalog.DocMetric: m.Name,
		m.GroupBy[0]:      tenant,
		catalog.DocWindow: map[string]any{"start": start.Format(time.RFC3339), "end": start.Add(size).Format(time.RFC3339),
			"size": catalog.Duration{Duration: size}.String()},
		catalog.DocSamples:    v,
		output:                v,
		catalog.DocComputedAt: start.Add(size).Format("2006-01-02T15:04:05.000Z"),
	}
	return esclient.BulkItem{Index: catalog.IndexName(m.Name, start), ID: catalog.DocID(m.Name, size, start, tenant), Doc: doc}
}
