package router

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/filewatch"
	"github.com/hourglass-io/hourglass/internal/record"
)

// watchCatalog reloads the catalog when asked (Reload) or when the file's
// content changes, checked every ReloadInterval.
func (r *Router) watchCatalog(ctx context.Context) {
	filewatch.Watch(ctx, r.cfg.CatalogPath, r.cfg.ReloadInterval, r.reload, func() { r.reloadCatalog(ctx) })
}

// checkLateness refuses a catalog in which a metric's allowed lateness does
// not exceed the event-time bound into the future: a record at the bound
// would then move that metric's watermark past every tenant's current
// records (record.TimeBounds says why).
func checkLateness(c *catalog.Catalog, b record.TimeBounds) error {
	var errs []error
	for _, m := range c.Metrics {
		if m.AllowedLateness.Duration <= b.MaxFuture {
			errs = append(errs, fmt.Errorf("metric %s: allowed_lateness %s must exceed the router's max-future %s",
				m.Name, m.AllowedLateness.Duration, b.MaxFuture))
		}
	}
	return errors.Join(errs...)
}

// reloadCatalog loads the catalog and swaps the routes in. An invalid catalog,
// or one whose new topics cannot be created, is refused: the old routes stay.
func (r *Router) reloadCatalog(ctx context.Context) {
	c, err := catalog.Load(r.cfg.CatalogPath)
	if err == nil {
		err = checkLateness(c, r.cfg.TimeBounds)
	}
	if err != nil {
		r.metrics.reloads.WithLabelValues("error").Inc()
		r.log.Error("catalog reload refused; routing with the previous catalog", "error", err)
		return
	}
	routes := c.Routes()
	if err := r.ensureTopics(ctx, routes, false); err != nil {
		r.metrics.reloads.WithLabelValues("error").Inc()
		r.log.Error("catalog reload refused; routing with the previous catalog", "error", err)
		return
	}
	old := *r.routes.Swap(&routes)
	r.metrics.reloads.WithLabelValues("ok").Inc()
	r.metrics.routes.Set(float64(len(routes)))

	names := func(rs []catalog.Route) []string {
		out := make([]string, len(rs))
		for i, rt := range rs {
			out[i] = rt.Metric
		}
		return out
	}
	newNames, oldNames := names(routes), names(old)
	var added, removed []string
	for _, n := range newNames {
		if !slices.Contains(oldNames, n) {
			added = append(added, n)
		}
	}
	for _, n := range oldNames {
		if !slices.Contains(newNames, n) {
			removed = append(removed, n)
			r.metrics.out.DeleteLabelValues(n) // no series for metrics that no longer exist
		}
	}
	r.log.Info("catalog reloaded", "metrics", len(routes), "added", added, "removed", removed)
}
