package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// queryUser is one kind of query-service user: whose token, which tenant,
// the question asked synchronously and the one submitted as a job.
type queryUser struct {
	kind, token, tenant string
	syncTitle, jobTitle string
	sync, job           string // query bodies, %s = from, to
}

// queries asks the query service one synchronous question and one job per
// user kind — a customer's tenant-scoped question, a developer's — over
// this run's time range, and prints the answers. A refusal, a failed job or
// an empty answer fails the report.
func queries(ctx context.Context, base, customerToken, devToken string, tenants []string, since time.Time, w io.Writer) error {
	from := since.Add(-time.Minute).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	dev := tenants[len(tenants)-1]
	users := []queryUser{
		{kind: "Customer", token: customerToken, tenant: tenants[0],
			syncTitle: "requests and p95 latency by status",
			sync:      `{"from": %q, "to": %q, "group_by": ["status"], "aggregations": [{"name": "requests", "fn": "count"}, {"name": "p95_ms", "fn": "percentile", "field": "duration_ms", "p": 95}], "order": [{"by": "requests", "desc": true}]}`,
			jobTitle:  "requests and bytes out per minute",
			job:       `{"from": %q, "to": %q, "bucket": "1m", "aggregations": [{"name": "requests", "fn": "count"}, {"name": "bytes_out", "fn": "sum", "field": "bytes_out"}], "order": [{"by": "bucket"}]}`},
		{kind: "Developer", token: devToken, tenant: dev,
			syncTitle: "the slowest paths among 5xx answers",
			sync:      `{"from": %q, "to": %q, "tenant": "` + dev + `", "filters": [{"field": "status", "op": "gte", "value": 500}], "group_by": ["path"], "aggregations": [{"name": "errors", "fn": "count"}, {"name": "max_ms", "fn": "max", "field": "duration_ms"}], "order": [{"by": "max_ms", "desc": true}], "limit": 5}`,
			jobTitle:  "distinct clients and requests per edge",
			job:       `{"from": %q, "to": %q, "tenant": "` + dev + `", "group_by": ["edge"], "aggregations": [{"name": "clients", "fn": "approx_distinct", "field": "client_ip"}, {"name": "requests", "fn": "count"}], "order": [{"by": "requests", "desc": true}]}`},
	}
	for _, u := range users {
		body := fmt.Sprintf(u.sync, from, to)
		fmt.Fprintf(w, "\n== %ss: query service, %s of %s (synchronous)\n$ curl -H 'Authorization: Bearer …' -d '%s' '%s/v1/query?wait=60s'\n", u.kind, u.syncTitle, u.tenant, body, base)
		start := time.Now()
		var sync struct {
			Job  map[string]any   `json:"job"`
			Rows []map[string]any `json:"rows"`
		}
		status, err := call(ctx, http.MethodPost, base+"/v1/query?wait=60s", u.token, body, &sync)
		if err != nil {
			return fmt.Errorf("query service (%s, synchronous): %w", u.kind, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("query service (%s, synchronous): %d, not answered within 60s: %v", u.kind, status, sync.Job)
		}
		fmt.Fprintf(w, "answered in %s, %d rows:\n", time.Since(start).Round(time.Millisecond), len(sync.Rows))
		printRows(w, sync.Job, sync.Rows)
		if len(sync.Rows) == 0 && u.kind == "Customer" {
			return fmt.Errorf("query service (%s): no rows for %s over this run", u.kind, u.tenant)
		}

		body = fmt.Sprintf(u.job, from, to)
		fmt.Fprintf(w, "\n== %ss: query service, %s of %s (a job)\n$ curl -H 'Authorization: Bearer …' -d '%s' %s/v1/jobs\n", u.kind, u.jobTitle, u.tenant, body, base)
		var sub struct {
			Job struct {
				ID    string            `json:"id"`
				Links map[string]string `json:"links"`
			} `json:"job"`
		}
		if status, err := call(ctx, http.MethodPost, base+"/v1/jobs", u.token, body, &sub); err != nil || status != http.StatusAccepted {
			return fmt.Errorf("query service (%s, job): %d %v", u.kind, status, err)
		}
		states, err := followEvents(ctx, base+sub.Job.Links["events"], u.token)
		if err != nil {
			return fmt.Errorf("query service (%s, job %s events): %w", u.kind, sub.Job.ID, err)
		}
		fmt.Fprintf(w, "job %s, events: %s\n", sub.Job.ID, strings.Join(states, " → "))
		if states[len(states)-1] != "succeeded" {
			return fmt.Errorf("query service (%s): job %s ended %s", u.kind, sub.Job.ID, states[len(states)-1])
		}
		var st struct {
			Job map[string]any `json:"job"`
		}
		if _, err := call(ctx, http.MethodGet, base+"/v1/jobs/"+sub.Job.ID, u.token, "", &st); err != nil {
			return err
		}
		rows, err := resultPage(ctx, base+"/v1/jobs/"+sub.Job.ID+"/results?limit=10", u.token)
		if err != nil {
			return fmt.Errorf("query service (%s, job %s results): %w", u.kind, sub.Job.ID, err)
		}
		if cols, _ := st.Job["columns"].([]any); len(rows) > 0 && len(cols) == 0 {
			return fmt.Errorf("query service (%s): job %s has rows but no columns: %v", u.kind, sub.Job.ID, st.Job)
		}
		fmt.Fprintf(w, "$ curl -H 'Authorization: Bearer …' %s/v1/jobs/%s/results?limit=10   (%v rows in all; first page:)\n", base, sub.Job.ID, st.Job["rows"])
		printRows(w, st.Job, rows)
		if len(rows) == 0 {
			return fmt.Errorf("query service (%s): job %s has no rows for %s over this run", u.kind, sub.Job.ID, u.tenant)
		}
	}
	return nil
}

// call sends a JSON request and decodes the answer into out.
func call(ctx context.Context, method, u, token, body string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode >= 300 && res.StatusCode != http.StatusAccepted {
		return res.StatusCode, fmt.Errorf("%s %s: %d %s", method, u, res.StatusCode, bytes.TrimSpace(b))
	}
	return res.StatusCode, json.Unmarshal(b, out)
}

// followEvents reads a job's server-sent events until its final state and
// returns the states in order.
func followEvents(ctx context.Context, u, token string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	body, err := getStream(ctx, u, token)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var states []string
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return states, err
		}
		states = append(states, ev.State)
		switch ev.State {
		case "succeeded", "failed", "cancelled":
			return states, nil
		}
	}
	if err := sc.Err(); err != nil {
		return states, err
	}
	return states, fmt.Errorf("the event stream ended before a final state (%v)", states)
}

// resultPage reads one NDJSON page of a job's results (without its _meta line).
func resultPage(ctx context.Context, u, token string) ([]map[string]any, error) {
	body, err := getStream(ctx, u, token)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var rows []map[string]any
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			return nil, err
		}
		if _, meta := row["_meta"]; !meta {
			rows = append(rows, row)
		}
	}
	return rows, sc.Err()
}

// getStream GETs u with the token and returns the body of a 200 answer.
func getStream(ctx context.Context, u, token string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		return nil, fmt.Errorf("GET %s: %d %s", u, res.StatusCode, b)
	}
	return res.Body, nil
}

// printRows prints rows as a table, in the job's column order.
func printRows(w io.Writer, job map[string]any, rows []map[string]any) {
	var cols []string
	if cs, ok := job["columns"].([]any); ok {
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				cols = append(cols, fmt.Sprint(m["name"]))
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for i, r := range rows {
		if i == 10 {
			fmt.Fprintf(tw, "… %d more\n", len(rows)-10)
			break
		}
		vals := make([]string, len(cols))
		for j, c := range cols {
			vals[j] = short(r[c])
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	_ = tw.Flush()
}
