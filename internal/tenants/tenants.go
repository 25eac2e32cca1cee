// Package tenants isolates customers from each other in Elasticsearch and
// Kibana (`hourglass tenants provision <tenant>`):
//
//   - per catalog metric, a filtered alias hourglass-metrics-<m>-tenant-<t>
//     (filter: term tenant = <t>) on every index behind the shared alias
//     hourglass-metrics-<m>, including next month's index, which provisioning
//     creates ahead of time;
//   - an Elasticsearch role hourglass-tenant-<t> that can read only those
//     aliases, only the tenant's documents in them (document-level security:
//     a filtered alias alone does not hold on a get by _id), and see only the
//     tenant's Kibana space (Elasticsearch security API; OpenSearch has no
//     such API and the step is skipped with a message: see the README for
//     what is then not isolated);
//   - a Kibana space tenant-<t> holding the tenant's data views, charts and
//     dashboard (internal/kibana rendered over the tenant's aliases).
//
// Every step is idempotent. Aliases are attached to indices, not to index
// patterns: an index created later (a new month) joins the tenant's alias only
// when provisioning runs again, so run it at least monthly for every tenant
// (the Helm chart's CronJob, or cron); each run also creates next month's
// index so a missed day loses nothing.
package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/kibana"
	"github.com/hourglass-io/hourglass/internal/record"
)

// ValidateTenant checks a tenant name against the traffic record's rule
// ([record.ValidTenant]).
func ValidateTenant(t string) error {
	if !record.ValidTenant(t) {
		return fmt.Errorf("tenants: tenant %q: want [a-z0-9-]{1,63}", t)
	}
	return nil
}

// Alias is the tenant's filtered alias of a metric.
func Alias(metric, tenant string) string { return catalog.Alias(metric) + "-tenant-" + tenant }

// RoleName is the Elasticsearch role of a tenant's users.
func RoleName(tenant string) string { return "hourglass-tenant-" + tenant }

// SpaceID is the tenant's Kibana space.
func SpaceID(tenant string) string { return "tenant-" + tenant }

// KibanaOptions renders the tenant's saved objects over its aliases, with ids
// of its own.
func KibanaOptions(tenant string) kibana.Options {
	return kibana.Options{
		IDPrefix: "hourglass-" + tenant + "-",
		Index:    func(metric string) string { return Alias(metric, tenant) },
		Title:    "Hourglass: traffic metrics of " + tenant,
	}
}

// Filter is the query of a tenant's aliases.
func Filter(tenant string) map[string]any {
	return map[string]any{"term": map[string]any{"tenant": tenant}}
}

// RoleBody is the Elasticsearch role (PUT /_security/role/<name>): read and
// view_index_metadata on the tenant's aliases only, restricted by
// document-level security to the tenant's documents, and read access to the
// dashboards and visualizations of the tenant's Kibana space.
//
// The alias filter alone is not a security boundary: a get by _id through a
// filtered alias ignores the filter and returns another tenant's document.
// The role's DLS query applies to every read, get by _id included.
func RoleBody(c *catalog.Catalog, tenant string) map[string]any {
	var names []string
	for _, m := range c.Metrics {
		names = append(names, Alias(m.Name, tenant))
	}
	dls, _ := json.Marshal(Filter(tenant)) // a map of strings: cannot fail
	return map[string]any{
		"cluster": []string{},
		"indices": []any{map[string]any{
			"names":      names,
			"privileges": []string{"read", "view_index_metadata"},
			"query":      string(dls),
		}},
		"applications": []any{map[string]any{
			"application": "kibana-.kibana",
			"privileges":  []string{"feature_dashboard.read", "feature_visualize.read"},
			"resources":   []string{"space:" + SpaceID(tenant)},
		}},
		"metadata": map[string]any{"managed_by": "hourglass tenants provision", "tenant": tenant},
	}
}

// Report says what Provision did.
type Report struct {
	Aliases  []string // alias names
	Indices  []string // indices the aliases cover
	Role     string   // what happened to the role
	Space    string   // what happened to the Kibana space
	Imported int      // saved objects imported into the space
}

// Provisioner provisions tenants.
type Provisioner struct {
	ES      *esclient.Client
	Kibana  *Kibana // nil: the Kibana steps are skipped
	Catalog *catalog.Catalog
	Log     *slog.Logger
	// Now gives next month's index; nil means time.Now.
	Now func() time.Time
}

// Provision creates or updates everything the tenant needs.
func (p *Provisioner) Provision(ctx context.Context, tenant string) (Report, error) {
	var rep Report
	if err := ValidateTenant(tenant); err != nil {
		return rep, err
	}
	if err := p.aliases(ctx, tenant, &rep); err != nil {
		return rep, err
	}
	role, err := p.role(ctx, tenant)
	if err != nil {
		return rep, err
	}
	rep.Role = role
	if p.Kibana == nil {
		rep.Space = "skipped: no Kibana URL"
	} else {
		if rep.Space, rep.Imported, err = p.space(ctx, tenant); err != nil {
			return rep, err
		}
	}
	p.Log.Info("tenant provisioned", "tenant", tenant, "aliases", len(rep.Aliases), "indices", len(rep.Indices),
		"role", rep.Role, "space", rep.Space, "imported", rep.Imported)
	return rep, nil
}

// aliases attaches the tenant's filtered alias of every metric to each index
// of the metric's shared alias, in one atomic _aliases request.
func (p *Provisioner) aliases(ctx context.Context, tenant string, rep *Report) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	y, m, _ := now().UTC().Date()
	nextMonth := time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	var actions []any
	for _, metric := range p.Catalog.Metrics {
		shared := catalog.Alias(metric.Name)
		next := catalog.IndexName(metric.Name, nextMonth)
		err := p.ES.Do(ctx, esapi.IndicesCreateRequest{Index: next}, "tenants: create next month's index "+next, nil)
		if err != nil && !(esclient.HasStatus(err, http.StatusBadRequest) && strings.Contains(err.Error(), "already_exists")) {
			return err
		}
		var behind map[string]any
		err = p.ES.Do(ctx, esapi.IndicesGetAliasRequest{Name: []string{shared}}, "tenants: list the indices of "+shared, &behind)
		if esclient.HasStatus(err, http.StatusNotFound) {
			return fmt.Errorf("tenants: alias %s does not exist: run `hourglass es setup` first: %w", shared, err)
		}
		if err != nil {
			return err
		}
		alias := Alias(metric.Name, tenant)
		rep.Aliases = append(rep.Aliases, alias)
		for _, index := range sortedKeys(behind) {
			rep.Indices = append(rep.Indices, index)
			actions = append(actions, map[string]any{"add": map[string]any{
				"index": index, "alias": alias, "filter": Filter(tenant),
			}})
		}
	}
	body, err := json.Marshal(map[string]any{"actions": actions})
	if err != nil {
		return fmt.Errorf("tenants: encode alias actions: %w", err)
	}
	return p.ES.Do(ctx, esapi.IndicesUpdateAliasesRequest{Body: bytes.NewReader(body)},
		"tenants: add the filtered aliases of "+tenant, nil)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// role creates or updates the tenant's role through the Elasticsearch security
// API, or says why it did not.
func (p *Provisioner) role(ctx context.Context, tenant string) (string, error) {
	info, err := p.ES.Flavor(ctx)
	if err != nil {
		return "", fmt.Errorf("tenants: %w", err)
	}
	name := RoleName(tenant)
	if info.Flavor != esclient.Elasticsearch {
		return fmt.Sprintf("skipped: %s %s has no Elasticsearch security API; grant read on %s with its own security plugin",
			info.Flavor, info.Version, catalog.Alias("*")+"-tenant-"+tenant), nil
	}
	body, err := json.Marshal(RoleBody(p.Catalog, tenant))
	if err != nil {
		return "", fmt.Errorf("tenants: encode role %s: %w", name, err)
	}
	var out struct {
		Role struct {
			Created bool `json:"created"`
		} `json:"role"`
	}
	if err := p.ES.Do(ctx, esapi.SecurityPutRoleRequest{Name: name, Body: bytes.NewReader(body)},
		"tenants: put role "+name, &out); err != nil {
		return "", err
	}
	if out.Role.Created {
		return "created " + name, nil
	}
	return "updated " + name, nil
}

// space creates (or updates) the tenant's Kibana space and imports its saved
// objects, overwriting earlier versions.
func (p *Provisioner) space(ctx context.Context, tenant string) (string, int, error) {
	id := SpaceID(tenant)
	what, err := p.Kibana.EnsureSpace(ctx, Space{
		ID:          id,
		Name:        "Hourglass: " + tenant,
		Description: "Traffic metrics of " + tenant + " (managed by hourglass tenants provision)",
	})
	if err != nil {
		return "", 0, err
	}
	objs, err := kibana.Render(p.Catalog, KibanaOptions(tenant))
	if err != nil {
		return "", 0, err
	}
	ndjson, err := kibana.MarshalNDJSON(objs)
	if err != nil {
		return "", 0, err
	}
	n, err := p.Kibana.Import(ctx, id, "hourglass-"+tenant+".ndjson", ndjson)
	if err != nil {
		return "", 0, err
	}
	if n != len(objs) {
		return "", n, fmt.Errorf("tenants: import into space %s: %d of %d objects imported", id, n, len(objs))
	}
	return what, n, nil
}

// errImport is returned when Kibana answers an import with success false.
var errImport = errors.New("kibana refused objects")
