package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/esclient"
)

// runRecords identifies this demo run's records: `hourglass gen --seed S`
// gives every request id the suffix "-<S in base 36>", so records of
// earlier runs on the same stack are never counted.
type runRecords struct {
	Suffix   string    // "-<seed base 36>"
	Accepted int       // what ingress accepted, from gen's summary
	Since    time.Time // when the run began sending
}

func (r runRecords) ours(id string) bool { return strings.HasSuffix(id, r.Suffix) }

// sinks proves that every accepted record of this run reached both raw-log
// sinks: accepted = archived = indexed by count, and the archived and indexed
// request ids are the same set (a sample of which is printed).
func sinks(ctx context.Context, es *esclient.Client, dataStream string, fsys archive.FS, tenants []string, run runRecords, w io.Writer) error {
	fmt.Fprintln(w, "\n== Every sink, by count: this run's records (request ids ending in "+run.Suffix+")")
	archived, err := archivedIDs(ctx, fsys, tenants, run)
	if err != nil {
		return fmt.Errorf("sinks: read the archive %s: %w", fsys, err)
	}
	indexed, err := indexedIDs(ctx, es, dataStream, run)
	if err != nil {
		return fmt.Errorf("sinks: read the data stream %s: %w", dataStream, err)
	}
	fmt.Fprintf(w, "  accepted by ingress  %d\n  archived in HDFS     %d  (%s)\n  indexed              %d  (%s)\n",
		run.Accepted, len(archived), fsys, len(indexed), dataStream)
	var problems []string
	if len(archived) != run.Accepted {
		problems = append(problems, fmt.Sprintf("archived %d != accepted %d", len(archived), run.Accepted))
	}
	if len(indexed) != run.Accepted {
		problems = append(problems, fmt.Sprintf("indexed %d != accepted %d", len(indexed), run.Accepted))
	}
	for id, n := range archived {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("request %s archived %d times", id, n))
			break
		}
	}
	var onlyArchived, onlyIndexed []string
	for id := range archived {
		if !indexed[id] {
			onlyArchived = append(onlyArchived, id)
		}
	}
	for id := range indexed {
		if archived[id] == 0 {
			onlyIndexed = append(onlyIndexed, id)
		}
	}
	if len(onlyArchived) > 0 || len(onlyIndexed) > 0 {
		problems = append(problems, fmt.Sprintf("%d ids only archived (e.g. %v), %d only indexed (e.g. %v)",
			len(onlyArchived), first(onlyArchived, 3), len(onlyIndexed), first(onlyIndexed, 3)))
	}
	ids := make([]string, 0, len(archived))
	for id := range archived {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var sample []string
	for i := 0; i < len(ids) && len(sample) < 5; i += max(1, len(ids)/5) {
		sample = append(sample, ids[i])
	}
	fmt.Fprintf(w, "  the same request ids in both sinks, e.g. %s\n", strings.Join(sample, ", "))
	if len(problems) > 0 {
		return fmt.Errorf("sinks: %s", strings.Join(problems, "; "))
	}
	if run.Accepted == 0 {
		return fmt.Errorf("sinks: no record of this run was accepted")
	}
	return nil
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// archivedIDs reads every part file of the run's hours and counts this run's
// request ids.
func archivedIDs(ctx context.Context, fsys archive.FS, tenants []string, run runRecords) (map[string]int, error) {
	out := map[string]int{}
	for _, tenant := range tenants {
		hours, err := archive.ListHours(ctx, fsys, tenant, run.Since.Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			return nil, err
		}
		for _, h := range hours {
			parts, _, err := archive.ListHour(ctx, fsys, h)
			if err != nil {
				return nil, err
			}
			for _, p := range parts {
				if err := eachRequestID(ctx, fsys, p.Path(), func(id string) {
					if run.ours(id) {
						out[id]++
					}
				}); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

func eachRequestID(ctx context.Context, fsys archive.FS, path string, fn func(string)) error {
	f, err := fsys.Open(ctx, path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fn(rec.RequestID)
	}
	return sc.Err()
}

// indexedIDs pages (the request id is ECS event.id) through the data stream's documents of this run.
func indexedIDs(ctx context.Context, es *esclient.Client, dataStream string, run runRecords) (map[string]bool, error) {
	if err := es.Do(ctx, esapi.IndicesRefreshRequest{Index: []string{dataStream}}, "refresh", nil); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	var after []any
	for {
		q := map[string]any{
			"size":    5000,
			"_source": []string{"event.id"},
			"query":   map[string]any{"wildcard": map[string]any{"event.id": "*" + run.Suffix}},
			"sort":    []any{map[string]any{"event.id": "asc"}},
		}
		if after != nil {
			q["search_after"] = after
		}
		body, _ := json.Marshal(q)
		var res struct {
			Hits struct {
				Hits []struct {
					Source struct {
						Event struct {
							ID string `json:"id"`
						} `json:"event"`
					} `json:"_source"`
					Sort []any `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := es.Do(ctx, esapi.SearchRequest{Index: []string{dataStream}, Body: strings.NewReader(string(body))}, "search", &res); err != nil {
			return nil, err
		}
		hits := res.Hits.Hits
		for _, h := range hits {
			out[h.Source.Event.ID] = true
		}
		if len(hits) == 0 {
			return out, nil
		}
		after = hits[len(hits)-1].Sort
	}
}
