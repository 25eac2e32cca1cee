package tenants

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/catalog/catalogtest"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/essetup"
	"github.com/hourglass-io/hourglass/internal/kibana"
)

type seen struct {
	method, path, query, contentType, xsrf, auth string
	body                                         []byte
}

type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) record(req *http.Request) seen {
	body, _ := io.ReadAll(req.Body)
	s := seen{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Get("Content-Type"),
		req.Header.Get("kbn-xsrf"), req.Header.Get("Authorization"), body}
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
	return s
}

func (r *recorder) find(method, pathPrefix string) []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []seen
	for _, s := range r.reqs {
		if s.method == method && strings.HasPrefix(s.path, pathPrefix) {
			out = append(out, s)
		}
	}
	return out
}

// fakeES answers as Elasticsearch 8 (or OpenSearch) for the requests
// provisioning sends, following the documented request shapes.
func fakeES(t *testing.T, rec *recorder, flavor esclient.Flavor) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s := rec.record(req)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case s.method == http.MethodGet && s.path == "/":
			if flavor == esclient.OpenSearch {
				_, _ = io.WriteString(w, `{"cluster_name":"c","version":{"number":"2.19.1","distribution":"opensearch"}}`)
				return
			}
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
			_, _ = io.WriteString(w, `{"cluster_name":"c","version":{"number":"8.15.0"},"tagline":"You Know, for Search"}`)
		case s.method == http.MethodPut && strings.HasPrefix(s.path, "/hourglass-metrics-"):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"type":"resource_already_exists_exception","reason":"index [x] already exists"},"status":400}`)
		case s.method == http.MethodGet && strings.HasPrefix(s.path, "/_alias/"):
			alias := strings.TrimPrefix(s.path, "/_alias/")
			_ = json.NewEncoder(w).Encode(map[string]any{
				alias + "-2026.03": map[string]any{"aliases": map[string]any{alias: map[string]any{}}},
				alias + "-2026.04": map[string]any{"aliases": map[string]any{alias: map[string]any{}}},
			})
		case s.method == http.MethodPost && s.path == "/_aliases":
			_, _ = io.WriteString(w, `{"acknowledged":true}`)
		case s.method == http.MethodPut && strings.HasPrefix(s.path, "/_security/role/"):
			_, _ = io.WriteString(w, `{"role":{"created":true}}`)
		default:
			t.Errorf("unexpected Elasticsearch request %s %s", s.method, s.path)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
}

// fakeKibana follows the Kibana spaces and saved objects import APIs: a second
// POST of the same space is a 409; imports must be multipart with a file part.
func fakeKibana(t *testing.T, rec *recorder, schema kibana.Schema) *httptest.Server {
	var mu sync.Mutex
	spaces := map[string]bool{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("kbn-xsrf") == "" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"statusCode":400,"error":"Bad Request","message":"Request must contain a kbn-xsrf header."}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case req.Method == http.MethodPost && req.URL.Path == "/api/spaces/space":
			s := rec.record(req)
			var sp Space
			require.NoError(t, json.Unmarshal(s.body, &sp))
			mu.Lock()
			defer mu.Unlock()
			if spaces[sp.ID] {
				w.WriteHeader(http.StatusConflict)
				return
			}
			spaces[sp.ID] = true
			_, _ = w.Write(s.body)
		case req.Method == http.MethodPut && strings.HasPrefix(req.URL.Path, "/api/spaces/space/"):
			s := rec.record(req)
			_, _ = w.Write(s.body)
		case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/api/saved_objects/_import"):
			f, hdr, err := req.FormFile("file")
			require.NoError(t, err, "the import is multipart/form-data with a part named file")
			require.True(t, strings.HasSuffix(hdr.Filename, ".ndjson"), hdr.Filename)
			data, _ := io.ReadAll(f)
			rec.mu.Lock()
			rec.reqs = append(rec.reqs, seen{method: req.Method, path: req.URL.Path, query: req.URL.RawQuery,
				contentType: req.Header.Get("Content-Type"), xsrf: req.Header.Get("kbn-xsrf"),
				auth: req.Header.Get("Authorization"), body: data})
			rec.mu.Unlock()
			objs, err := kibana.ParseNDJSON(data)
			require.NoError(t, err)
			require.NoError(t, kibana.Validate(objs, schema))
			_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "successCount": len(objs), "successResults": []any{}})
		default:
			t.Errorf("unexpected Kibana request %s %s", req.Method, req.URL.Path)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
}

func tenantSchema(c *catalog.Catalog, tenant string) kibana.Schema {
	s := kibana.Schema{}
	for alias, fields := range kibana.SchemaFromTemplates(essetup.Templates(c, essetup.DefaultConfig(), esclient.Elasticsearch)) {
		s[alias+"-tenant-"+tenant] = fields
	}
	return s
}

func TestProvisionRequestShapes(t *testing.T) {
	c := catalogtest.Shipped(t)
	var esRec, kbRec recorder
	esSrv := fakeES(t, &esRec, esclient.Elasticsearch)
	defer esSrv.Close()
	kbSrv := fakeKibana(t, &kbRec, tenantSchema(c, "acme"))
	defer kbSrv.Close()
	es, err := esclient.New(esclient.Config{URLs: []string{esSrv.URL}, MaxRetries: -1})
	require.NoError(t, err)
	p := &Provisioner{ES: es, Catalog: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Kibana: &Kibana{URL: kbSrv.URL, Username: "admin", Password: "secret"},
		Now:    func() time.Time { return time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC) }}
	ctx := context.Background()

	rep, err := p.Provision(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, "created hourglass-tenant-acme", rep.Role)
	require.Equal(t, "created space tenant-acme", rep.Space)
	require.Len(t, rep.Aliases, len(c.Metrics))

	// Next month's index is created ahead (PUT /<index>).
	creates := esRec.find(http.MethodPut, "/hourglass-metrics-")
	require.Len(t, creates, len(c.Metrics))
	require.Equal(t, "/hourglass-metrics-avg_rtt-2026.04", creates[0].path)

	// One atomic POST /_aliases: an add action with a term filter per index.
	posts := esRec.find(http.MethodPost, "/_aliases")
	require.Len(t, posts, 1)
	var aliases struct {
		Actions []map[string]struct {
			Index  string         `json:"index"`
			Alias  string         `json:"alias"`
			Filter map[string]any `json:"filter"`
		} `json:"actions"`
	}
	require.NoError(t, json.Unmarshal(posts[0].body, &aliases))
	require.Len(t, aliases.Actions, 2*len(c.Metrics))
	first := aliases.Actions[0]["add"]
	require.Equal(t, "hourglass-metrics-avg_rtt-2026.03", first.Index)
	require.Equal(t, "hourglass-metrics-avg_rtt-tenant-acme", first.Alias)
	require.Equal(t, map[string]any{"term": map[string]any{"tenant": "acme"}}, first.Filter)

	// PUT /_security/role/<name> with the documented body: cluster, indices
	// (names + privileges), applications, metadata; nothing else.
	roles := esRec.find(http.MethodPut, "/_security/role/")
	require.Len(t, roles, 1)
	require.Equal(t, "/_security/role/hourglass-tenant-acme", roles[0].path)
	require.Contains(t, roles[0].contentType, "application/json")
	var role map[string]any
	require.NoError(t, json.Unmarshal(roles[0].body, &role))
	require.ElementsMatch(t, []string{"cluster", "indices", "applications", "metadata"}, keys(role))
	idx := role["indices"].([]any)[0].(map[string]any)
	require.ElementsMatch(t, []string{"names", "privileges", "query"}, keys(idx))
	require.JSONEq(t, `{"term":{"tenant":"acme"}}`, idx["query"].(string), "document-level security: only the tenant's documents, even on a get by _id")
	require.Equal(t, []any{"read", "view_index_metadata"}, idx["privileges"])
	require.Len(t, idx["names"], len(c.Metrics))
	for _, n := range idx["names"].([]any) {
		require.Regexp(t, `^hourglass-metrics-[a-z_]+-tenant-acme$`, n, "only the tenant's aliases")
	}
	app := role["applications"].([]any)[0].(map[string]any)
	require.Equal(t, "kibana-.kibana", app["application"])
	require.Equal(t, []any{"space:tenant-acme"}, app["resources"])

	// Kibana: POST /api/spaces/space, then the multipart import into the
	// space with overwrite=true; every call with kbn-xsrf and the credentials.
	sp := kbRec.find(http.MethodPost, "/api/spaces/space")
	require.Len(t, sp, 1)
	require.JSONEq(t, `{"id":"tenant-acme","name":"Hourglass: acme","description":"Traffic metrics of acme (managed by hourglass tenants provision)","disabledFeatures":[]}`, string(sp[0].body))
	imp := kbRec.find(http.MethodPost, "/s/tenant-acme/api/saved_objects/_import")
	require.Len(t, imp, 1)
	require.Equal(t, "overwrite=true", imp[0].query)
	require.True(t, strings.HasPrefix(imp[0].contentType, "multipart/form-data; boundary="), imp[0].contentType)
	require.Equal(t, "true", imp[0].xsrf)
	require.True(t, strings.HasPrefix(imp[0].auth, "Basic "))
	require.Contains(t, string(imp[0].body), `"title":"hourglass-metrics-latency-tenant-acme"`)
	bands := 0
	for _, m := range c.Metrics {
		bands += len(m.Baselines)
	}
	require.Equal(t, 2*len(c.Metrics)+bands+2, rep.Imported, "data views, charts, band panels, freshness, dashboard")

	// Idempotent: the second run updates the space (PUT after the 409).
	rep, err = p.Provision(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, "updated space tenant-acme", rep.Space)
	require.Len(t, kbRec.find(http.MethodPut, "/api/spaces/space/tenant-acme"), 1)
}

func TestProvisionSkipsTheRoleOnOpenSearch(t *testing.T) {
	var esRec recorder
	srv := fakeES(t, &esRec, esclient.OpenSearch)
	defer srv.Close()
	es, err := esclient.New(esclient.Config{URLs: []string{srv.URL}, MaxRetries: -1})
	require.NoError(t, err)
	p := &Provisioner{ES: es, Catalog: catalogtest.Shipped(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	rep, err := p.Provision(context.Background(), "acme")
	require.NoError(t, err)
	require.Contains(t, rep.Role, "skipped: opensearch 2.19.1 has no Elasticsearch security API")
	require.Equal(t, "skipped: no Kibana URL", rep.Space)
	require.Empty(t, esRec.find(http.MethodPut, "/_security/"))
}

func TestKibanaErrorsAreReported(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "_import") {
			_, _ = io.WriteString(w, `{"success":false,"successCount":1,"errors":[{"type":"visualization","id":"v1","error":{"type":"missing_references"}}]}`)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"statusCode":403,"message":"forbidden"}`)
	}))
	defer srv.Close()
	k := &Kibana{URL: srv.URL}
	_, err := k.EnsureSpace(context.Background(), Space{ID: "tenant-x", Name: "x"})
	require.ErrorContains(t, err, "create Kibana space tenant-x: 403")
	n, err := k.Import(context.Background(), "tenant-x", "x.ndjson", []byte("{}\n"))
	require.ErrorIs(t, err, errImport)
	require.ErrorContains(t, err, "visualization v1: missing_references")
	require.Equal(t, 1, n)
}

func TestValidateTenant(t *testing.T) {
	require.NoError(t, ValidateTenant("acme-1"))
	for _, bad := range []string{"", "Acme", "a_b", strings.Repeat("a", 64), "a/b"} {
		require.Error(t, ValidateTenant(bad), bad)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
