package indexer

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/record"
)

func TestNewDocECS(t *testing.T) {
	rtt := 12.5
	r := record.Record{
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), Tenant: "acme", RequestID: "req-1",
		Method: "POST", Scheme: "https", Host: "acme.example.com", Path: "/api/v1/cart", Status: 503,
		BytesIn: 321, BytesOut: 4567, DurationMS: 1.5, RTTMS: &rtt, ClientIP: "10.0.0.7",
		UserAgent: "curl/8", Edge: "edge-2", Protocol: "HTTP/1.1",
	}
	b, err := MarshalDoc(NewDoc(&r, "default", "hourglass.logs.raw", 3, 42))
	require.NoError(t, err)
	require.JSONEq(t, `{
	  "@timestamp": "2026-01-02T03:04:05.123456Z",
	  "event": {"id": "req-1", "duration": 1500000, "dataset": "hourglass.traffic", "kind": "event",
	            "category": ["web", "network"], "type": ["access"], "outcome": "failure"},
	  "organization": {"id": "acme"},
	  "labels": {"tenant": "acme"},
	  "http": {"request": {"method": "POST", "bytes": 321}, "response": {"status_code": 503, "bytes": 4567}, "version": "1.1"},
	  "url": {"path": "/api/v1/cart", "domain": "acme.example.com", "scheme": "https"},
	  "client": {"ip": "10.0.0.7"},
	  "user_agent": {"original": "curl/8"},
	  "observer": {"name": "edge-2"},
	  "network": {"protocol": "http"},
	  "hourglass": {"rtt_ms": 12.5, "kafka": {"topic": "hourglass.logs.raw", "partition": 3, "offset": 42}},
	  "data_stream": {"type": "logs", "dataset": "hourglass.traffic", "namespace": "default"}
	}`, string(b))
	require.Equal(t, "hourglass.logs.raw-3-42", DocID("hourglass.logs.raw", 3, 42))

	// Every mapped field of a document is in the template's mappings.
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	props := mappings()["properties"].(map[string]any)
	var walk func(prefix string, d map[string]any, p map[string]any)
	walk = func(prefix string, d map[string]any, p map[string]any) {
		for k, v := range d {
			m, ok := p[k].(map[string]any)
			require.True(t, ok, "field %s%s is not mapped", prefix, k)
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub, m["properties"].(map[string]any))
			}
		}
	}
	walk("", doc, props)
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.DataStream = "logs-other-default"
	c.BatchSize = 0
	err := c.Validate()
	require.ErrorContains(t, err, "data-stream")
	require.ErrorContains(t, err, "batch-size")
}
