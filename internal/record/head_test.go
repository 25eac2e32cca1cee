package record

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHeadOfCanonicalRecords(t *testing.T) {
	ts := time.Date(2026, 2, 3, 10, 4, 5, 123456789, time.FixedZone("x", 3600))
	for _, r := range []Record{
		{Timestamp: ts, Tenant: "tenant-01", Method: "GET", Path: "/", Status: 200},
		{Timestamp: ts.Truncate(time.Second), Tenant: "a", Method: "POST", Path: "/x\"y", Status: 500},
	} {
		line, err := r.MarshalJSON()
		require.NoError(t, err)
		got, tenant, ok := Head(line)
		require.True(t, ok, "%s", line)
		require.True(t, r.Timestamp.Equal(got), "%s: %s", line, got)
		require.Equal(t, r.Tenant, tenant)
		// Head agrees with Decode.
		dec, _, err := Decode(line)
		require.NoError(t, err)
		require.True(t, dec.Timestamp.Equal(got))
		require.Equal(t, dec.Tenant, tenant)
	}
}

func TestHeadRefusesOtherForms(t *testing.T) {
	for _, line := range []string{
		``, `{`, `[]`, `{"timestamp":"`,
		`{"tenant":"a","timestamp":"2026-02-03T10:00:00Z"}`,  // reordered
		`{ "timestamp":"2026-02-03T10:00:00Z","tenant":"a"}`, // spaced
		`{"timestamp":"yesterday","tenant":"a"}`,
		`{"timestamp":"2026-02-03T10:00:00Z","method":"GET"}`,
		`{"timestamp":"2026-02-03T10:00:00Z","tenant":"a\u0062"}`, // escaped: Decode knows
		`{"timestamp":"2026-02-03T10:00:00Z","tenant":"a`,
	} {
		_, _, ok := Head([]byte(line))
		require.False(t, ok, "%q", line)
	}
}
