package esclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/stretchr/testify/require"
)

// newTestClient returns a Client on a test server that, like OpenSearch, never
// sends X-Elastic-Product.
func newTestClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{URLs: []string{srv.URL}, Username: "u", Password: "p", MaxRetries: -1})
	require.NoError(t, err)
	return c
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{URLs: []string{"http://127.0.0.1:19200"}}, true},
		{Config{URLs: []string{"https://a:9200", "https://b:9200"}, Username: "u", Password: "p"}, true},
		{Config{}, false},
		{Config{URLs: []string{"127.0.0.1:9200"}}, false},
		{Config{URLs: []string{"ftp://x"}}, false},
		{Config{URLs: []string{"http://x"}, Username: "u"}, false},
		{Config{URLs: []string{"http://x"}, Username: "u", Password: "p", APIKey: "k"}, false},
	} {
		err := tc.cfg.Validate()
		require.Equal(t, tc.ok, err == nil, "%+v: %v", tc.cfg, err)
	}
	_, err := New(Config{})
	require.Error(t, err)
}

func TestNoProductCheckNoCompatHeader(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		// OpenSearch answers 406 to the compatible-with=8 media type.
		if strings.Contains(r.Header.Get("Accept")+r.Header.Get("Content-Type"), "compatible-with") {
			w.WriteHeader(http.StatusNotAcceptable)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"count":7}`)
	})
	var out struct{ Count int }
	err := c.Do(context.Background(), esapi.CountRequest{Index: []string{"x"}, Body: strings.NewReader(`{}`)}, "count x", &out)
	require.NoError(t, err)
	require.Equal(t, 7, out.Count)

	// The bulk indexer runs on the same transport.
	_, err = esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: c})
	require.NoError(t, err)
}

func TestCheckDecodesErrors(t *testing.T) {
	bodies := map[string]struct {
		status int
		body   string
		want   Error
	}{
		"/object": {400, `{"error":{"root_cause":[],"type":"mapper_parsing_exception","reason":"failed to parse field [n]","caused_by":{"type":"number_format_exception","reason":"For input string: \"x\""}},"status":400}`,
			Error{Status: 400, Type: "mapper_parsing_exception", Reason: "failed to parse field [n]", CausedBy: `number_format_exception: For input string: "x"`}},
		"/string": {405, `{"error":"Incorrect HTTP method for uri [/string]","status":405}`,
			Error{Status: 405, Reason: "Incorrect HTTP method for uri [/string]"}},
		"/plain": {502, "bad gateway\n", Error{Status: 502, Reason: "bad gateway"}},
		"/empty": {404, "", Error{Status: 404}},
	}
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		b := bodies[r.URL.Path]
		w.WriteHeader(b.status)
		_, _ = io.WriteString(w, b.body)
	})
	for path, b := range bodies {
		req, err := http.NewRequest(http.MethodGet, path, nil)
		require.NoError(t, err)
		httpRes, err := c.Perform(req)
		require.NoError(t, err)
		err = Check(&esapi.Response{StatusCode: httpRes.StatusCode, Header: httpRes.Header, Body: httpRes.Body}, nil, "get "+path)
		var e *Error
		require.ErrorAs(t, err, &e, path)
		want := b.want
		want.What = "get " + path
		require.Equal(t, want, *e)
		require.True(t, HasStatus(fmt.Errorf("wrapped: %w", err), b.status))
		require.False(t, HasStatus(err, 200))
	}
	require.EqualError(t, (&Error{What: "create index a", Status: 400, Type: "resource_already_exists_exception", Reason: "index [a] already exists"}),
		"create index a: 400 Bad Request: resource_already_exists_exception: index [a] already exists")

	boom := errors.New("connection refused")
	require.ErrorIs(t, Check(nil, boom, "ping"), boom)
	require.NoError(t, Check(&esapi.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil, "ping"))
}

func TestFlavor(t *testing.T) {
	answers := map[string]struct {
		header, body string
	}{
		"os":      {"", `{"cluster_name":"hourglass","version":{"distribution":"opensearch","number":"2.19.1"},"tagline":"The OpenSearch Project: https://opensearch.org/"}`},
		"es":      {"Elasticsearch", `{"cluster_name":"c","version":{"number":"8.15.0","build_flavor":"default"},"tagline":"You Know, for Search"}`},
		"unknown": {"", `{"name":"x","version":{"number":"1.0"}}`},
	}
	ctx := context.Background()
	for name, a := range answers {
		c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			if a.header != "" {
				w.Header().Set("X-Elastic-Product", a.header)
			}
			_, _ = io.WriteString(w, a.body)
		})
		info, err := c.Flavor(ctx)
		switch name {
		case "os":
			require.NoError(t, err)
			require.Equal(t, Info{Flavor: OpenSearch, Version: "2.19.1", ClusterName: "hourglass"}, info)
			require.Equal(t, 2, info.Major())
		case "es":
			require.NoError(t, err)
			require.Equal(t, Info{Flavor: Elasticsearch, Version: "8.15.0", ClusterName: "c"}, info)
			require.Equal(t, 8, info.Major())
		default:
			require.ErrorContains(t, err, "unknown server")
		}
	}
}

func TestBulkReportsEveryFailedItem(t *testing.T) {
	var lines []string
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/logs/_bulk" {
			http.NotFound(w, r)
			return
		}
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		_, _ = io.WriteString(w, `{"took":3,"errors":true,"items":[
			{"index":{"_index":"logs","_id":"1","_version":1,"result":"created","status":201}},
			{"create":{"_index":"logs","_id":"2","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[2]: version conflict"}}},
			{"delete":{"_index":"other","_id":"3","_version":2,"result":"not_found","status":404}},
			{"update":{"_index":"logs","_id":"4","status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}}]}`)
	})
	items := []BulkItem{
		{ID: "1", Doc: map[string]any{"n": 1}},
		{Op: BulkCreate, ID: "2", Doc: json.RawMessage("{\n\"n\": 2\n}")},
		{Op: BulkDelete, Index: "other", ID: "3"},
		{Op: BulkUpdate, ID: "4", Doc: []byte(`{"doc":{"n":"x"}}`)},
	}
	res, err := c.Bulk(context.Background(), "logs", items)
	require.Equal(t, []string{
		`{"index":{"_id":"1"}}`, `{"n":1}`,
		`{"create":{"_id":"2"}}`, `{"n":2}`,
		`{"delete":{"_id":"3","_index":"other"}}`,
		`{"update":{"_id":"4"}}`, `{"doc":{"n":"x"}}`,
	}, lines)
	var be *BulkError
	require.ErrorAs(t, err, &be)
	require.Len(t, res.Items, 4)
	require.Equal(t, 4, be.Total)
	require.Len(t, be.Failed, 3) // a delete of a missing document is a failure too
	require.Equal(t, "version_conflict_engine_exception: [2]: version conflict", be.Failed[0].Error)
	require.Equal(t, BulkDelete, be.Failed[1].Op)
	require.Equal(t, 404, be.Failed[1].Status)
	require.Contains(t, err.Error(), "3 of 4 items failed")
	require.Equal(t, "created", res.Items[0].Result)
}

func TestBulkMismatchAndBadInput(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"errors":false,"items":[{"index":{"_id":"1","status":201}}]}`)
	})
	ctx := context.Background()
	_, err := c.Bulk(ctx, "x", []BulkItem{{Doc: 1}, {Doc: 2}})
	require.ErrorContains(t, err, "answered for 1 items")
	_, err = c.Bulk(ctx, "x", []BulkItem{{Op: BulkDelete}})
	require.ErrorContains(t, err, "needs an ID")
	_, err = c.Bulk(ctx, "x", []BulkItem{{Op: "upsert", ID: "1", Doc: 1}})
	require.ErrorContains(t, err, "unknown op")
	_, err = c.Bulk(ctx, "x", []BulkItem{{ID: "1"}})
	require.ErrorContains(t, err, "needs a Doc")
	res, err := c.Bulk(ctx, "x", nil)
	require.NoError(t, err)
	require.Empty(t, res.Items)
}
