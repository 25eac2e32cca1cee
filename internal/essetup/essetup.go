// Package essetup prepares Elasticsearch 8 or OpenSearch 2 for Hourglass's
// metric documents, idempotently (`hourglass es setup`):
//
//   - one composable index template per metric, hourglass-metrics-<m>, for
//     the monthly indices hourglass-metrics-<m>-YYYY.MM, with a strict typed
//     mapping of the document (DESIGN.md, "Metric documents") compiled from
//     the catalog, and the alias hourglass-metrics-<m> that every new monthly
//     index joins;
//   - the current month's index, so the alias exists before the first window;
//   - templates for the late-record side indices hourglass-late-<m> and for
//     the batch runs index hourglass-jobruns;
//   - retention: an ILM policy (Elasticsearch) or an ISM policy with an
//     ism_template (OpenSearch) deleting indices older than Retention.
//
// Running it again changes nothing that is already as wanted.
package essetup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/record"
)

// Names of the side indices of the metric jobs.
const (
	JobRunsIndex  = catalog.JobRunsIndex
	PolicyName    = "hourglass-metrics-retention"
	templateOrder = 200
)

// Config shapes the indices.
type Config struct {
	Shards, Replicas int
	Retention        time.Duration // indices older than this (by creation) are deleted
	// Now gives the current month's index; nil means time.Now.
	Now func() time.Time
}

// DefaultConfig is the production default: 1 shard, 1 replica, 400 days.
func DefaultConfig() Config { return Config{Shards: 1, Replicas: 1, Retention: 400 * 24 * time.Hour} }

// Validate reports every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Shards < 1 || c.Replicas < 0 {
		errs = append(errs, fmt.Errorf("shards %d, replicas %d: want shards >= 1, replicas >= 0", c.Shards, c.Replicas))
	}
	if c.Retention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("retention %s: at least 24h", c.Retention))
	}
	return errors.Join(errs...)
}

// Template is one composable index template.
type Template struct {
	Name string
	Body map[string]any
}

// MetricMapping is the typed mapping of one metric's documents: a type for
// each of catalog's [catalog.Metric.DocumentFields], plus the baseline objects.
func MetricMapping(m catalog.Metric) map[string]any {
	props := map[string]any{
		catalog.DocMetric:     keyword(),
		catalog.DocWindow:     windowMapping(),
		catalog.DocSamples:    map[string]any{"type": "long"},
		catalog.DocComputedAt: map[string]any{"type": "date"},
	}
	for _, g := range m.GroupBy {
		props[g] = fieldType(g)
	}
	for _, a := range m.Aggregations {
		for _, out := range a.Outputs() {
			props[out] = outputType(a)
		}
	}
	if len(m.Baselines) > 0 {
		outs := map[string]any{}
		for _, b := range m.Baselines {
			outs[b.Output] = BaselineMapping()
		}
		props[catalog.BaselineField] = map[string]any{"properties": outs}
	}
	return map[string]any{"dynamic": "strict", "properties": props}
}

// BaselineMapping is the mapping of one output's baseline object,
// baseline.<output> (metrics-jobs/hourglass_jobs/baseline.py writes it on the
// documents of the baseline's window size). Every field but anomaly and
// samples is null when it cannot be computed.
func BaselineMapping() map[string]any {
	double := map[string]any{"type": "double"}
	return map[string]any{"properties": map[string]any{
		catalog.BaselineExpected: double,
		catalog.BaselineSpread:   double,
		catalog.BaselineLower:    double,
		catalog.BaselineUpper:    double,
		catalog.BaselineScore:    double,
		catalog.BaselineAnomaly:  map[string]any{"type": "boolean"},
		catalog.BaselineSamples:  map[string]any{"type": "long"},
	}}
}

func keyword() map[string]any { return map[string]any{"type": "keyword"} }

func windowMapping() map[string]any {
	return map[string]any{"properties": map[string]any{
		catalog.WindowStart: map[string]any{"type": "date"},
		catalog.WindowEnd:   map[string]any{"type": "date"},
		catalog.WindowSize:  keyword(),
	}}
}

// fieldType maps a record field used as a group key.
func fieldType(name string) map[string]any {
	f, _ := record.Lookup(name)
	switch f.Type {
	case record.TypeInt:
		return map[string]any{"type": "long"}
	case record.TypeFloat:
		return map[string]any{"type": "double"}
	case record.TypeIP:
		return map[string]any{"type": "ip"}
	}
	return keyword()
}

// outputType is the type of an aggregation's output, as Spark computes it.
func outputType(a catalog.Aggregation) map[string]any {
	switch a.Fn {
	case catalog.FnCount, catalog.FnApproxDistinct:
		return map[string]any{"type": "long"}
	case catalog.FnSum, catalog.FnMin, catalog.FnMax:
		if f, _ := record.Lookup(a.Field); f.Type == record.TypeInt {
			return map[string]any{"type": "long"}
		}
	}
	return map[string]any{"type": "double"}
}

// Templates compiles the catalog into the index templates es setup installs.
func Templates(c *catalog.Catalog, cfg Config, flavor esclient.Flavor) []Template {
	settings := func() map[string]any {
		s := map[string]any{"number_of_shards": cfg.Shards, "number_of_replicas": cfg.Replicas}
		if flavor == esclient.Elasticsearch {
			s["index.lifecycle.name"] = PolicyName
		}
		return s
	}
	var out []Template
	for _, m := range c.Metrics {
		alias := catalog.Alias(m.Name)
		out = append(out, Template{Name: alias, Body: map[string]any{
			"index_patterns": []string{alias + "-*"},
			"priority":       templateOrder,
			"template": map[string]any{
				"settings": settings(),
				"mappings": MetricMapping(m),
				"aliases":  map[string]any{alias: map[string]any{}},
			},
			"_meta": map[string]any{"managed_by": "hourglass es setup", "metric": m.Name},
		}})
	}
	// Group keys other than tenant, and the fields of out-of-range documents,
	// are mapped dynamically, strings as keyword.
	late := map[string]any{"dynamic": "true", "properties": LateProperties()}
	late["dynamic_templates"] = []any{map[string]any{"strings": map[string]any{
		"match_mapping_type": "string", "mapping": keyword()}}}
	out = append(out, Template{Name: "hourglass-late", Body: map[string]any{
		"index_patterns": []string{catalog.LateIndexPattern},
		"priority":       templateOrder,
		"template":       map[string]any{"settings": settings(), "mappings": late},
		"_meta":          map[string]any{"managed_by": "hourglass es setup"},
	}})
	date := map[string]any{"type": "date"}
	runs := map[string]any{"dynamic": "strict", "properties": map[string]any{
		catalog.RunMetric: keyword(), catalog.RunHour: date, catalog.RunMode: keyword(), catalog.RunSource: keyword(),
		catalog.RunStart: date, catalog.RunEnd: date,
		catalog.RunDurationSeconds: map[string]any{"type": "double"}, catalog.RunRecords: map[string]any{"type": "long"},
		catalog.RunDocuments: map[string]any{"type": "long"}, catalog.RunOutcome: keyword(),
		catalog.RunError: map[string]any{"type": "text"}, catalog.RunKafkaFrom: date,
		catalog.RunKafkaTo: date, catalog.RunOffsets: map[string]any{"type": "object", "enabled": false},
	}}
	out = append(out, Template{Name: JobRunsIndex, Body: map[string]any{
		"index_patterns": []string{JobRunsIndex},
		"priority":       templateOrder,
		"template":       map[string]any{"settings": map[string]any{"number_of_shards": 1, "number_of_replicas": cfg.Replicas}, "mappings": runs},
		"_meta":          map[string]any{"managed_by": "hourglass es setup"},
	}})
	return out
}

// LateProperties are the explicitly mapped fields of the late-record
// indices (catalog's late documents; the others are mapped dynamically).
func LateProperties() map[string]any {
	return map[string]any{
		catalog.DocMetric: keyword(), record.FieldTenant: keyword(), catalog.DocWindow: windowMapping(),
		catalog.DocLateRecords: map[string]any{"type": "long"}, catalog.DocWatermark: map[string]any{"type": "date"},
		catalog.DocBatchID: map[string]any{"type": "long"}, catalog.DocComputedAt: map[string]any{"type": "date"},
	}
}

// RetentionPatterns are the index patterns the retention policy applies to.
func RetentionPatterns() []string {
	return []string{catalog.MetricIndexPattern, catalog.LateIndexPattern}
}

// ILMPolicy is the Elasticsearch lifecycle policy.
func ILMPolicy(retention time.Duration) map[string]any {
	return map[string]any{"policy": map[string]any{
		"_meta": map[string]any{"managed_by": "hourglass es setup"},
		"phases": map[string]any{
			"hot":    map[string]any{"min_age": "0ms", "actions": map[string]any{}},
			"delete": map[string]any{"min_age": days(retention), "actions": map[string]any{"delete": map[string]any{}}},
		},
	}}
}

// ISMPolicy is the OpenSearch Index State Management policy; its ism_template
// attaches it to every new index of the patterns.
func ISMPolicy(retention time.Duration) map[string]any {
	return map[string]any{"policy": map[string]any{
		"description":   "Hourglass metric indices: delete after " + days(retention) + " (hourglass es setup)",
		"default_state": "hot",
		"states": []any{
			map[string]any{"name": "hot", "actions": []any{}, "transitions": []any{
				map[string]any{"state_name": "delete", "conditions": map[string]any{"min_index_age": days(retention)}},
			}},
			map[string]any{"name": "delete", "actions": []any{map[string]any{"delete": map[string]any{}}}, "transitions": []any{}},
		},
		"ism_template": []any{map[string]any{"index_patterns": RetentionPatterns(), "priority": templateOrder}},
	}}
}

func days(d time.Duration) string { return fmt.Sprintf("%dd", int(d.Hours()/24)) }

// Report says what Setup did.
type Report struct {
	Flavor    esclient.Info
	Templates []string
	Created   []string // indices created (the current month's)
	Retention string   // how retention is enforced, or why it is not
}

// Setup installs templates, aliases and retention. It is idempotent.
func Setup(ctx context.Context, es *esclient.Client, c *catalog.Catalog, cfg Config, log *slog.Logger) (Report, error) {
	var rep Report
	if err := cfg.Validate(); err != nil {
		return rep, fmt.Errorf("es setup: %w", err)
	}
	info, err := es.Flavor(ctx)
	if err != nil {
		return rep, fmt.Errorf("es setup: %w", err)
	}
	rep.Flavor = info
	// Retention first: on Elasticsearch the templates name the policy.
	rep.Retention, err = setupRetention(ctx, es, info.Flavor, cfg.Retention)
	if err != nil {
		return rep, err
	}
	for _, t := range Templates(c, cfg, info.Flavor) {
		body, err := json.Marshal(t.Body)
		if err != nil {
			return rep, fmt.Errorf("es setup: encode template %s: %w", t.Name, err)
		}
		req := esapi.IndicesPutIndexTemplateRequest{Name: t.Name, Body: bytes.NewReader(body)}
		if err := es.Do(ctx, req, "es setup: put index template "+t.Name, nil); err != nil {
			return rep, err
		}
		rep.Templates = append(rep.Templates, t.Name)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	for _, m := range c.Metrics {
		created, err := ensureIndex(ctx, es, catalog.Alias(m.Name), catalog.IndexName(m.Name, now()))
		if err != nil {
			return rep, err
		}
		if created != "" {
			rep.Created = append(rep.Created, created)
		}
	}
	log.Info("es setup done", "flavor", info.Flavor, "version", info.Version,
		"templates", len(rep.Templates), "created", rep.Created, "retention", rep.Retention)
	return rep, nil
}

// ensureIndex creates index unless alias already points somewhere.
func ensureIndex(ctx context.Context, es *esclient.Client, alias, index string) (string, error) {
	res, err := esapi.IndicesExistsAliasRequest{Name: []string{alias}}.Do(ctx, es)
	if err != nil {
		return "", fmt.Errorf("es setup: check alias %s: %w", alias, err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		return "", nil
	}
	err = es.Do(ctx, esapi.IndicesCreateRequest{Index: index}, "es setup: create index "+index, nil)
	if esclient.HasStatus(err, http.StatusBadRequest) && strings.Contains(err.Error(), "already_exists") {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return index, nil
}

func setupRetention(ctx context.Context, es *esclient.Client, flavor esclient.Flavor, retention time.Duration) (string, error) {
	if flavor == esclient.Elasticsearch {
		if err := es.PutILMPolicy(ctx, PolicyName, ILMPolicy(retention)); err != nil {
			return "", fmt.Errorf("es setup: %w", err)
		}
		return "ILM policy " + PolicyName + ": delete after " + days(retention), nil
	}
	changed, err := es.PutISMPolicy(ctx, PolicyName, ISMPolicy(retention))
	switch {
	case errors.Is(err, esclient.ErrNoISM):
		return "not enforced: the OpenSearch ISM plugin (opensearch-index-management) is not installed", nil
	case err != nil:
		return "", fmt.Errorf("es setup: %w", err)
	case !changed:
		return "ISM policy " + PolicyName + " (unchanged): delete after " + days(retention), nil
	}
	return "ISM policy " + PolicyName + ": delete after " + days(retention), nil
}
