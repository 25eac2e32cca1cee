package esclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeISM is the ISM plugin's policy endpoint as far as PutISMPolicy uses
// it: GET returns the stored policy with its sequence number, PUT stores
// one and refuses an update without the current sequence number.
type fakeISM struct {
	mu     sync.Mutex
	policy map[string]any // nil: none
	seqNo  int
	puts   []string // the query strings of the PUTs
}

func (f *fakeISM) handle(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		if f.policy == nil {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"type":"status_exception","reason":"Policy not found"},"status":404}`)
			return
		}
		// As the cluster does: the policy with fields of its own added.
		p := map[string]any{"policy_id": "p", "last_updated_time": 1}
		for k, v := range f.policy {
			p[k] = v
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"_id": "p", "_seq_no": f.seqNo, "_primary_term": 1, "policy": p})
	case http.MethodPut:
		f.puts = append(f.puts, r.URL.RawQuery)
		if f.policy != nil && r.URL.Query().Get("if_seq_no") != fmt.Sprint(f.seqNo) {
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `{"error":{"type":"version_conflict_engine_exception","reason":"seq_no"},"status":409}`)
			return
		}
		var body struct {
			Policy map[string]any `json:"policy"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		f.policy = body.Policy
		f.seqNo++
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{}`)
	}
}

func ismBody(description string) map[string]any {
	return map[string]any{"policy": map[string]any{"description": description, "default_state": "hot",
		"states": []any{map[string]any{"name": "hot", "actions": []any{}, "transitions": []any{}}}}}
}

func TestPutISMPolicyCreatesUpdatesAndKeeps(t *testing.T) {
	f := &fakeISM{}
	c := newTestClient(t, f.handle)
	ctx := context.Background()

	changed, err := c.PutISMPolicy(ctx, "p", ismBody("one"))
	require.NoError(t, err)
	require.True(t, changed, "created")
	require.Equal(t, []string{""}, f.puts, "a new policy needs no sequence number")

	changed, err = c.PutISMPolicy(ctx, "p", ismBody("one"))
	require.NoError(t, err)
	require.False(t, changed, "the same policy is left alone")
	require.Len(t, f.puts, 1)

	changed, err = c.PutISMPolicy(ctx, "p", ismBody("two"))
	require.NoError(t, err)
	require.True(t, changed, "updated")
	require.Equal(t, "if_primary_term=1&if_seq_no=1", f.puts[1], "updated under its sequence number")
	require.Equal(t, "two", f.policy["description"])
}

func TestPutISMPolicyWithoutThePlugin(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest) // OpenSearch's answer to an unknown endpoint
		fmt.Fprintf(w, `{"error":"no handler found for uri [%s] and method [%s]"}`, r.URL.Path, r.Method)
	})
	_, err := c.PutISMPolicy(context.Background(), "p", ismBody("one"))
	require.ErrorIs(t, err, ErrNoISM)
}
