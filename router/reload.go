package router

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"slices"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
)

// watchCatalog reloads the catalog when asked (Reload) or when the file's
// content changes, checked every ReloadInterval.
func (r *Router) watchCatalog(ctx context.Context) {
	last := fileHash(r.cfg.CatalogPath)
	tick := time.NewTicker(r.cfg.ReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.reload:
		case <-tick.C:
			h := fileHash(r.cfg.CatalogPath)
			if bytes.Equal(h, last) {
				continue
			}
		}
		last = fileHash(r.cfg.CatalogPath)
		r.reloadCatalog(ctx)
	}
}

// reloadCatalog loads the catalog and swaps the routes in. An invalid catalog,
// or one whose new topics cannot be created, is refused: the old routes stay.
func (r *Router) reloadCatalog(ctx context.Context) {
	c, err := catalog.Load(r.cfg.CatalogPath)
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

func fileHash(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}
