package esclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// ErrNoISM is PutISMPolicy's answer on an OpenSearch cluster without the
// index-management (ISM) plugin: the policy cannot be enforced there.
var ErrNoISM = errors.New("esclient: OpenSearch has no index-management (ISM) plugin")

// NoHandler reports whether err is a cluster's answer to an endpoint it does
// not have (a plugin that is not installed).
func NoHandler(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusBadRequest || e.Status == http.StatusNotFound) &&
		strings.Contains(e.Reason, "no handler found")
}

// PutILMPolicy creates or replaces an Elasticsearch ILM policy; policy is
// its body ({"policy": {...}}).
func (c *Client) PutILMPolicy(ctx context.Context, name string, policy map[string]any) error {
	body, err := json.Marshal(policy)
	if err != nil {
		return fmt.Errorf("esclient: encode ILM policy %s: %w", name, err)
	}
	return c.Do(ctx, esapi.ILMPutLifecycleRequest{Policy: name, Body: bytes.NewReader(body)}, "put ILM policy "+name, nil)
}

// PutISMPolicy creates or updates an OpenSearch ISM policy; policy is its
// body ({"policy": {...}}). An existing policy whose description,
// default_state and states are already policy's is left alone (changed
// false); one that differs is updated under its sequence number (ISM
// refuses an update without it). ErrNoISM without the plugin.
func (c *Client) PutISMPolicy(ctx context.Context, name string, policy map[string]any) (changed bool, err error) {
	want, ok := policy["policy"].(map[string]any)
	if !ok {
		return false, fmt.Errorf("esclient: ISM policy %s: the body has no policy object", name)
	}
	path := "/_plugins/_ism/policies/" + url.PathEscape(name)
	var current struct {
		SeqNo       *int64         `json:"_seq_no"`
		PrimaryTerm *int64         `json:"_primary_term"`
		Policy      map[string]any `json:"policy"`
	}
	err = c.Do(ctx, Raw{Method: http.MethodGet, Path: path}, "get ISM policy "+name, &current)
	params := url.Values{}
	switch {
	case NoHandler(err):
		return false, ErrNoISM
	case err != nil && !HasStatus(err, http.StatusNotFound):
		return false, err
	case err == nil && current.SeqNo != nil && current.PrimaryTerm != nil:
		if samePolicy(current.Policy, want) {
			return false, nil
		}
		params.Set("if_seq_no", fmt.Sprint(*current.SeqNo))
		params.Set("if_primary_term", fmt.Sprint(*current.PrimaryTerm))
	}
	body, err := json.Marshal(policy)
	if err != nil {
		return false, fmt.Errorf("esclient: encode ISM policy %s: %w", name, err)
	}
	if err := c.Do(ctx, Raw{Method: http.MethodPut, Path: path, Params: params, Body: body}, "put ISM policy "+name, nil); err != nil {
		return false, err
	}
	return true, nil
}

// samePolicy compares the parts of an ISM policy a writer sets (the cluster
// adds ids, times and versions to what it returns).
func samePolicy(got, want map[string]any) bool {
	norm := func(v any) string {
		b, _ := json.Marshal(v)
		var out any
		_ = json.Unmarshal(b, &out)
		b, _ = json.Marshal(out)
		return string(b)
	}
	for _, k := range []string{"description", "default_state", "states"} {
		if norm(got[k]) != norm(want[k]) {
			return false
		}
	}
	return true
}
