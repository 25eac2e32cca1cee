package indexer

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/hourglass-io/hourglass/internal/esclient"
)

// SetupConfig names what Setup creates.
type SetupConfig struct {
	// Template is the composable index template's name.
	Template string
	// Pattern is the data stream name pattern the template applies to.
	Pattern string
	// Policy is the name of the ILM (Elasticsearch) or ISM (OpenSearch)
	// policy that rolls the backing indices over daily and deletes them
	// after Retention.
	Policy    string
	Retention time.Duration
	Replicas  int
	// DataStream, when set, is created (if missing) so writes can start.
	DataStream string
	// Priority of the index template among those matching the same names
	// (0: 200). A narrower template (one namespace) outranks the default.
	Priority int
}

// DefaultSetup is what `hourglass es setup` applies.
func DefaultSetup() SetupConfig {
	return SetupConfig{
		Template:   "hourglass-traffic",
		Pattern:    "logs-" + Dataset + "-*",
		Policy:     "hourglass-traffic",
		Retention:  30 * 24 * time.Hour,
		Replicas:   1,
		DataStream: DefaultDataStream,
	}
}

// Validate reports every problem of the setup configuration.
func (s SetupConfig) Validate() error {
	var errs []error
	if s.Template == "" || s.Policy == "" {
		errs = append(errs, errors.New("template and policy names are required"))
	}
	if !strings.HasSuffix(s.Pattern, "*") {
		errs = append(errs, fmt.Errorf("pattern %q: must end in *", s.Pattern))
	}
	if s.Retention < time.Hour {
		errs = append(errs, fmt.Errorf("retention %s: must be >= 1h", s.Retention))
	}
	if s.Replicas < 0 {
		errs = append(errs, fmt.Errorf("replicas %d: must be >= 0", s.Replicas))
	}
	return errors.Join(errs...)
}

// SetupResult says what Setup applied.
type SetupResult struct {
	Flavor esclient.Flavor
	// Retention is how retention is enforced: "ilm", "ism", or "" when the
	// cluster has no lifecycle management (an OpenSearch without its
	// index-management plugin); Warning then says so.
	Retention string
	Warning   string
}

// Setup applies the retention policy and the index template of the raw-log
// data stream, on Elasticsearch (ILM) or OpenSearch (ISM) as the cluster
// says it is. It is idempotent: running it again updates both in place.
func Setup(ctx context.Context, c *esclient.Client, s SetupConfig) (SetupResult, error) {
	if err := s.Validate(); err != nil {
		return SetupResult{}, fmt.Errorf("indexer: setup: %w", err)
	}
	info, err := c.Flavor(ctx)
	if err != nil {
		return SetupResult{}, fmt.Errorf("indexer: setup: %w", err)
	}
	res := SetupResult{Flavor: info.Flavor}
	retention := fmt.Sprintf("%dh", int64(s.Retention.Hours()))
	settings := map[string]any{"number_of_replicas": s.Replicas}
	switch info.Flavor {
	case esclient.Elasticsearch:
		if err := c.PutILMPolicy(ctx, s.Policy, ilmPolicy(retention)); err != nil {
			return res, fmt.Errorf("indexer: setup: %w", err)
		}
		settings["index.lifecycle.name"] = s.Policy
		res.Retention = "ilm"
	case esclient.OpenSearch:
		_, err := c.PutISMPolicy(ctx, s.Policy, ismPolicy(retention, ".ds-"+s.Pattern))
		switch {
		case errors.Is(err, esclient.ErrNoISM):
			res.Warning = "this OpenSearch has no index-management (ISM) plugin: retention " + retention + " is not enforced by the cluster"
		case err != nil:
			return res, fmt.Errorf("indexer: setup: %w", err)
		default:
			res.Retention = "ism"
		}
	}
	tmpl := map[string]any{
		"index_patterns": []string{s.Pattern},
		"data_stream":    map[string]any{},
		"priority":       cmp.Or(s.Priority, 200),
		"template":       map[string]any{"settings": settings, "mappings": mappings()},
		"_meta":          map[string]any{"managed_by": "hourglass", "description": "raw traffic logs, ECS field names"},
	}
	body, _ := json.Marshal(tmpl)
	if err := c.Do(ctx, esapi.IndicesPutIndexTemplateRequest{Name: s.Template, Body: bytes.NewReader(body)},
		"indexer: put index template "+s.Template, nil); err != nil {
		return res, err
	}
	if s.DataStream != "" {
		err := c.Do(ctx, esapi.IndicesCreateDataStreamRequest{Name: s.DataStream}, "indexer: create data stream "+s.DataStream, nil)
		var e *esclient.Error
		if err != nil && !(errors.As(err, &e) && strings.Contains(e.Type, "already_exists")) {
			return res, err
		}
	}
	return res, nil
}

// mappings are the ECS fields of Doc.
func mappings() map[string]any {
	kw := map[string]any{"type": "keyword"}
	long := map[string]any{"type": "long"}
	obj := func(props map[string]any) map[string]any { return map[string]any{"properties": props} }
	return map[string]any{
		"dynamic": false,
		"properties": map[string]any{
			"@timestamp": map[string]any{"type": "date_nanos"},
			"event": obj(map[string]any{"id": kw, "duration": long, "dataset": kw, "kind": kw, "category": kw,
				"type": kw, "outcome": kw}),
			"organization": obj(map[string]any{"id": kw}),
			"labels":       obj(map[string]any{"tenant": kw}),
			"http": obj(map[string]any{
				"request":  obj(map[string]any{"method": kw, "bytes": long}),
				"response": obj(map[string]any{"status_code": long, "bytes": long}),
				"version":  kw,
			}),
			"url":        obj(map[string]any{"path": kw, "domain": kw, "scheme": kw}),
			"client":     obj(map[string]any{"ip": map[string]any{"type": "ip"}}),
			"user_agent": obj(map[string]any{"original": map[string]any{"type": "keyword", "ignore_above": 1024}}),
			"observer":   obj(map[string]any{"name": kw}),
			"network":    obj(map[string]any{"protocol": kw}),
			"hourglass": obj(map[string]any{
				"rtt_ms": map[string]any{"type": "double"}, "upstream_ms": map[string]any{"type": "double"},
				"kafka": obj(map[string]any{"topic": kw, "partition": map[string]any{"type": "integer"}, "offset": long}),
			}),
			"data_stream": obj(map[string]any{"type": kw, "dataset": kw, "namespace": kw}),
		},
	}
}

// ilmPolicy is the raw logs' Elasticsearch ILM policy: roll over daily,
// delete after retention.
func ilmPolicy(retention string) map[string]any {
	return map[string]any{"policy": map[string]any{
		"_meta": map[string]any{"managed_by": "hourglass"},
		"phases": map[string]any{
			"hot":    map[string]any{"actions": map[string]any{"rollover": map[string]any{"max_age": "1d", "max_primary_shard_size": "50gb"}}},
			"delete": map[string]any{"min_age": retention, "actions": map[string]any{"delete": map[string]any{}}},
		},
	}}
}

// ismPolicy is the same for OpenSearch's ISM, applied to the data stream's
// backing indices by its ism_template.
func ismPolicy(retention, indexPattern string) map[string]any {
	return map[string]any{"policy": map[string]any{
		"description":   "hourglass raw logs: roll over daily, delete after " + retention,
		"default_state": "hot",
		"states": []any{
			map[string]any{
				"name":        "hot",
				"actions":     []any{map[string]any{"rollover": map[string]any{"min_index_age": "1d"}}},
				"transitions": []any{map[string]any{"state_name": "delete", "conditions": map[string]any{"min_index_age": retention}}},
			},
			map[string]any{"name": "delete", "actions": []any{map[string]any{"delete": map[string]any{}}}, "transitions": []any{}},
		},
		"ism_template": []any{map[string]any{"index_patterns": []string{indexPattern}, "priority": 100}},
	}}
}

// DeleteSetup removes what Setup created (tests, and `hourglass es` teardown).
func DeleteSetup(ctx context.Context, c *esclient.Client, s SetupConfig) error {
	var errs []error
	ignore404 := func(err error) {
		if err != nil && !esclient.HasStatus(err, http.StatusNotFound) {
			errs = append(errs, err)
		}
	}
	if s.DataStream != "" {
		ignore404(c.Do(ctx, esapi.IndicesDeleteDataStreamRequest{Name: []string{s.DataStream}}, "indexer: delete data stream "+s.DataStream, nil))
	}
	ignore404(c.Do(ctx, esapi.IndicesDeleteIndexTemplateRequest{Name: s.Template}, "indexer: delete index template "+s.Template, nil))
	info, err := c.Flavor(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if info.Flavor == esclient.OpenSearch {
		if err := c.Do(ctx, esclient.Raw{Method: http.MethodDelete, Path: "/_plugins/_ism/policies/" + url.PathEscape(s.Policy)}, "indexer: delete ISM policy", nil); !esclient.NoHandler(err) {
			ignore404(err)
		}
	} else {
		ignore404(c.Do(ctx, esapi.ILMDeleteLifecycleRequest{Policy: s.Policy}, "indexer: delete ILM policy", nil))
	}
	return errors.Join(errs...)
}
