// Command report prints, at the end of `make demo`, what each user of
// Hourglass sees: the customers' metric values (from OpenSearch), the SRE's
// SLA status (from the lag monitor), the developers' log-peek answer, and one
// synchronous query and one job per user kind on the query service. It
// exits 1 when a tenant lacks a complete 1-minute window of a metric or a
// status is not OK, so `make demo` fails loudly instead of printing a
// half-working pipeline.
//
//	go run ./demo/report --es-url … --lagmon-url … --logpeek-url … --logpeek-token … --tenants t1,t2
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/hourglass-io/hourglass/internal/archive"
	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
)

func main() {
	esURL := flag.String("es-url", "http://127.0.0.1:19200", "OpenSearch/Elasticsearch")
	catalogPath := flag.String("catalog", "metrics-jobs/catalog.yaml", "metric catalog")
	lagmonURL := flag.String("lagmon-url", "http://127.0.0.1:19106", "lag monitor")
	logpeekURL := flag.String("logpeek-url", "http://127.0.0.1:18090", "log-peek API")
	token := flag.String("logpeek-token", "", "log-peek bearer token")
	tenants := flag.String("tenants", "", "tenants that sent traffic, comma-separated")
	archiveRoot := flag.String("archive-root", "", "the archive (hdfs://nn:port/path or a directory)")
	dataStream := flag.String("data-stream", "logs-hourglass.traffic-default", "the indexer's raw-log data stream")
	seed := flag.Uint64("run-seed", 0, "the --seed this run gave hourglass gen: its request ids end in -<seed base 36>")
	accepted := flag.Int("accepted", -1, "records ingress accepted in this run (gen's summary)")
	since := flag.String("since", "", "when this run began sending (RFC 3339)")
	queryURL := flag.String("query-url", "", "query service (empty: no query section)")
	customerToken := flag.String("query-customer-token", "", "a customer's query-service token (the first tenant's)")
	devToken := flag.String("query-developer-token", "", "a developer's query-service token (every tenant)")
	baselineOf := flag.String("baseline", "", "METRIC.OUTPUT: report that baseline's band and anomalies (empty: no baseline section)")
	bandTenant := flag.String("band-tenant", "", "--baseline: a tenant whose windows of this run must carry a band")
	anomalyTenant := flag.String("anomaly-tenant", "", "--baseline: a tenant with at least one anomalous window in this run")
	chartDir := flag.String("chart-dir", ".", "--baseline: where the SVG charts are written")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ok := true
	if *archiveRoot != "" {
		if err := checkSinks(ctx, *esURL, *archiveRoot, *dataStream, strings.Split(*tenants, ","), *seed, *accepted, *since); err != nil {
			fmt.Println("FAIL:", err)
			ok = false
		}
	}
	runStart, _ := time.Parse(time.RFC3339, *since) // zero without --since: any window will do
	if err := customers(ctx, *esURL, *catalogPath, strings.Split(*tenants, ","), runStart, os.Stdout); err != nil {
		fmt.Println("FAIL:", err)
		ok = false
	}
	if err := sre(ctx, *lagmonURL, os.Stdout); err != nil {
		fmt.Println("FAIL:", err)
		ok = false
	}
	if err := developers(ctx, *logpeekURL, *token, strings.Split(*tenants, ",")[0], os.Stdout); err != nil {
		fmt.Println("FAIL:", err)
		ok = false
	}
	if *baselineOf != "" {
		if err := baselines(ctx, *esURL, *catalogPath, *baselineOf, *bandTenant, *anomalyTenant, *chartDir, runStart, os.Stdout); err != nil {
			fmt.Println("FAIL:", err)
			ok = false
		}
	}
	if *queryURL != "" {
		if err := queries(ctx, *queryURL, *customerToken, *devToken, strings.Split(*tenants, ","), runStart, os.Stdout); err != nil {
			fmt.Println("FAIL:", err)
			ok = false
		}
	}
	if !ok {
		os.Exit(1)
	}
}

func checkSinks(ctx context.Context, esURL, root, dataStream string, tenants []string, seed uint64, accepted int, since string) error {
	began, err := time.Parse(time.RFC3339, since)
	if err != nil || seed == 0 || accepted < 0 {
		return fmt.Errorf("sinks: --run-seed, --accepted and --since (RFC 3339) are required with --archive-root")
	}
	fsys, err := archive.Open(root, "hourglass")
	if err != nil {
		return err
	}
	defer fsys.Close()
	es, err := esclient.New(esclient.Config{URLs: []string{esURL}})
	if err != nil {
		return err
	}
	run := runRecords{Suffix: "-" + strconv.FormatUint(seed, 36), Accepted: accepted, Since: began}
	return sinks(ctx, es, dataStream, fsys, tenants, run, os.Stdout)
}

// customers prints, per metric and tenant, the newest complete 1-minute
// window: the values a customer's dashboard shows.
//
// With a run start (--since), a window must end after it: a metric whose
// newest window predates this run is frozen (its records counted late, say),
// whatever its lag says. Each metric's late and out-of-range counts of this
// run are printed beside it.
func customers(ctx context.Context, esURL, catalogPath string, tenants []string, since time.Time, w io.Writer) error {
	c, err := catalog.Load(catalogPath)
	if err != nil {
		return err
	}
	es, err := esclient.New(esclient.Config{URLs: []string{esURL}})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\n== Customers: the newest complete 1-minute window per metric and tenant (read back from OpenSearch)")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tTENANT\tWINDOW (UTC)\tSAMPLES\tVALUES")
	var missing []string
	now := time.Now().UTC()
	for _, m := range c.Metrics {
		for _, tenant := range tenants {
			doc, err := newestWindow(ctx, es, m.Name, tenant, now)
			if err != nil {
				return err
			}
			if doc == nil {
				missing = append(missing, m.Name+"/"+tenant)
				fmt.Fprintf(tw, "%s\t%s\t(none yet)\t\t\n", m.Name, tenant)
				continue
			}
			var vals []string
			for _, f := range m.Outputs() {
				vals = append(vals, fmt.Sprintf("%s=%s", f, short(doc[f])))
			}
			win := doc["window"].(map[string]any)
			stale := ""
			if end, err := time.Parse(time.RFC3339, fmt.Sprint(win["end"])); err == nil && !since.IsZero() && !end.After(since) {
				stale = "  STALE: before this run"
				missing = append(missing, m.Name+"/"+tenant+" (newest window before this run)")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s–%s\t%v\t%s%s\n", m.Name, tenant, clock(win["start"]), clock(win["end"]), doc["samples"], strings.Join(vals, " "), stale)
		}
	}
	tw.Flush()
	if !since.IsZero() {
		fmt.Fprintln(w, "\n  records of this run that reached no window (hourglass-late-<metric>):")
		for _, m := range c.Metrics {
			late, rejected, err := dropped(ctx, es, m.Name, since)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "    %-16s late (beyond the watermark) %d, out of range %d\n", m.Name, late, rejected)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no complete 1-minute window of this run for %s", strings.Join(missing, ", "))
	}
	return nil
}

// dropped sums the late and out-of-range records the metric's job counted
// since t (computed_at), by reason.
func dropped(ctx context.Context, es *esclient.Client, metric string, t time.Time) (late, rejected int64, err error) {
	body := fmt.Sprintf(`{"size":0,"query":{"range":{"computed_at":{"gte":%q}}},
		"aggs":{"late":{"sum":{"field":"late_records"}},"rejected":{"sum":{"field":"rejected_records"}}}}`, t.Format(time.RFC3339))
	var res struct {
		Aggregations struct {
			Late, Rejected struct{ Value float64 }
		} `json:"aggregations"`
	}
	idx := catalog.LateIndex(metric)
	req := esapi.SearchRequest{Index: []string{idx}, Body: strings.NewReader(body), IgnoreUnavailable: esapi.BoolPtr(true)}
	if err := es.Do(ctx, req, "search "+idx, &res); err != nil {
		return 0, 0, err
	}
	return int64(res.Aggregations.Late.Value), int64(res.Aggregations.Rejected.Value), nil
}

func newestWindow(ctx context.Context, es *esclient.Client, metric, tenant string, now time.Time) (map[string]any, error) {
	body := fmt.Sprintf(`{"size":1,"sort":[{"window.start":"desc"}],"query":{"bool":{"filter":[
		{"term":{"tenant":%q}},{"term":{"window.size":"1m"}},{"range":{"window.end":{"lte":%q}}}]}}}`,
		tenant, now.Format(time.RFC3339))
	docs, err := searchSources(ctx, es, catalog.Alias(metric), body)
	if err != nil || len(docs) == 0 {
		return nil, err
	}
	return docs[0], nil
}

// searchSources runs one search on index and returns the hits' _source.
func searchSources(ctx context.Context, es *esclient.Client, index, body string) ([]map[string]any, error) {
	var res struct {
		Hits struct {
			Hits []struct {
				Source map[string]any `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := es.Do(ctx, esapi.SearchRequest{Index: []string{index}, Body: strings.NewReader(body)}, "search "+index, &res); err != nil {
		return nil, err
	}
	docs := make([]map[string]any, len(res.Hits.Hits))
	for i, h := range res.Hits.Hits {
		docs[i] = h.Source
	}
	return docs, nil
}

// sre prints the lag monitor's status of every watched group and metric.
func sre(ctx context.Context, base string, w io.Writer) error {
	var st struct {
		// lag and time_lag_seconds are a number, or null with the reason
		// in *_unknown_reason (lag-monitor/README.md, "/v1/status").
		Groups []struct {
			Group, Metric, Status string
			Lag                   *int64   `json:"lag"`
			LagUnknownReason      string   `json:"lag_unknown_reason"`
			TimeLag               *float64 `json:"time_lag_seconds"`
			TimeLagUnknownReason  string   `json:"time_lag_unknown_reason"`
		} `json:"groups"`
		Freshness []struct {
			Metric, Status string
		} `json:"freshness"`
	}
	if err := getJSON(ctx, base+"/v1/status", "", &st); err != nil {
		return fmt.Errorf("lag monitor: %w", err)
	}
	fmt.Fprintln(w, "\n== SRE: SLA status from the lag monitor (consumer groups and metric freshness)")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tSTATUS\tLAG (records)\tTIME LAG")
	var bad []string
	for _, g := range st.Groups {
		lag, timeLag := "unknown ("+g.LagUnknownReason+")", "unknown ("+g.TimeLagUnknownReason+")"
		if g.Lag != nil {
			lag = fmt.Sprint(*g.Lag)
		}
		if g.TimeLag != nil {
			timeLag = fmt.Sprintf("%.1fs", *g.TimeLag)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Group, g.Status, lag, timeLag)
		if g.Status != "OK" || g.Lag == nil {
			bad = append(bad, g.Group+"="+g.Status)
		}
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nMETRIC\tFRESHNESS STATUS")
	for _, f := range st.Freshness {
		fmt.Fprintf(tw, "%s\t%s\n", f.Metric, f.Status)
		if f.Status != "OK" {
			bad = append(bad, "freshness "+f.Metric+"="+f.Status)
		}
	}
	tw.Flush()
	if len(st.Groups) == 0 {
		return fmt.Errorf("the lag monitor watches no group yet")
	}
	if len(bad) > 0 {
		return fmt.Errorf("not OK: %s", strings.Join(bad, ", "))
	}
	return nil
}

// developers prints a log-peek query for the last five minutes and its first records.
func developers(ctx context.Context, base, token, tenant string, w io.Writer) error {
	now := time.Now().UTC()
	q := url.Values{"tenant": {tenant}, "from": {now.Add(-10 * time.Minute).Format(time.RFC3339)},
		"to": {now.Format(time.RFC3339)}, "status": {"503"}, "limit": {"3"}}
	u := base + "/v1/logs?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("log-peek: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Fprintf(w, "\n== Developers: log-peek, the last 10 minutes of %s's 503s (first 3 records)\n$ curl -H 'Authorization: Bearer …' '%s'\n", tenant, u)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("log-peek answered %d: %s", res.StatusCode, body)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	if len(lines) < 2 { // the _meta line alone: nothing archived
		return fmt.Errorf("log-peek returned no record for %s", tenant)
	}
	return nil
}

func getJSON(ctx context.Context, u, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("GET %s: %d %s", u, res.StatusCode, b)
	}
	return json.NewDecoder(res.Body).Decode(out)
}

func clock(v any) string {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("15:04")
}

func short(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprintf("%.3f", x)
	}
	return fmt.Sprint(v)
}
