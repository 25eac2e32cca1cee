package record

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAccessors(t *testing.T) {
	rec, _, err := Decode([]byte(good))
	require.NoError(t, err)
	for _, f := range Fields() {
		switch f.Type {
		case TypeInt, TypeFloat:
			_, ok := rec.Number(f.Name)
			require.True(t, ok, f.Name)
		case TypeString, TypeIP:
			v, ok := rec.Text(f.Name)
			require.True(t, ok, f.Name)
			require.NotEmpty(t, v)
		}
	}
	v, ok := rec.Number(FieldRTTMS)
	require.True(t, ok)
	require.Equal(t, 3.25, v)
	rec.RTTMS = nil
	_, ok = rec.Number(FieldRTTMS)
	require.False(t, ok)
	_, ok = rec.Text(FieldStatus)
	require.False(t, ok, "Text of a numeric field")
}

func TestProjectionHead(t *testing.T) {
	rec, _, err := Decode([]byte(good))
	require.NoError(t, err)
	for _, ts := range []time.Time{rec.Timestamp, time.Date(2026, 12, 4, 8, 0, 0, 0, time.FixedZone("x", 7200)),
		time.Date(2026, 12, 4, 8, 0, 0, 123456789, time.UTC)} {
		rec.Timestamp = ts
		out := string(rec.AppendProjection(nil, []string{FieldTimestamp, FieldTenant}))
		want := ProjectionHead + ts.UTC().Format(time.RFC3339Nano) + `"`
		require.True(t, strings.HasPrefix(out, want), "%s does not begin with %s", out, want)
		require.True(t, strings.HasSuffix(ts.UTC().Format(time.RFC3339Nano), "Z"))
	}
}

func TestAppendProjection(t *testing.T) {
	rec, _, err := Decode([]byte(good))
	require.NoError(t, err)
	rec.UserAgent = "quote \" <tag> é \x01"
	rec.UpstreamMS = nil
	out := rec.AppendProjection(nil, []string{FieldTimestamp, FieldTenant, FieldStatus, FieldDurationMS, FieldUpstreamMS, FieldUserAgent, "nope"})
	var m map[string]any
	require.NoError(t, json.Unmarshal(out, &m), string(out))
	require.Equal(t, map[string]any{
		"timestamp": "2026-11-21T09:15:30.123Z", "tenant": "acme-1", "status": 200.0,
		"duration_ms": 12.5, "user_agent": "quote \" <tag> é \x01",
	}, m)
}
