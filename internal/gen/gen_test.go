package gen

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/record"
)

func TestDeterministicAndValid(t *testing.T) {
	a, b := New(Config{Seed: 7, Tenants: 3}), New(Config{Seed: 7, Tenants: 3})
	statuses := map[int]int{}
	noRTT := 0
	for i := 0; i < 20000; i++ {
		ra, rb := a.Next(), b.Next()
		require.Equal(t, ra, rb)
		require.NoError(t, ra.Validate())
		statuses[ra.Status/100]++
		if ra.RTTMS == nil {
			noRTT++
		}
	}
	require.Greater(t, statuses[2], 15000)
	require.Greater(t, statuses[5], 100)
	require.Greater(t, noRTT, 200)
	c := New(Config{Seed: 8, Tenants: 3})
	require.NotEqual(t, New(Config{Seed: 7, Tenants: 3}).Next(), c.Next())
}

func TestMalformedShare(t *testing.T) {
	g := New(Config{Seed: 1, Malformed: 0.1})
	var bad, rejected int
	for i := 0; i < 5000; i++ {
		line, valid := g.NextLine()
		_, _, err := record.Decode(line)
		if !valid {
			bad++
			require.Error(t, err, "%s", line)
			rejected++
		} else {
			require.NoError(t, err)
		}
	}
	require.InDelta(t, 500, bad, 100)
	require.Equal(t, bad, rejected)
}

func TestRecordSize(t *testing.T) {
	g := New(Config{Seed: 1, RecordSize: 1024})
	line, _ := g.NextLine()
	require.InDelta(t, 1024, len(line), 8)
}

// A slow tenant's durations are multiplied; every other record, and every
// other field of the slow tenant's, is what the seed gives without Slow.
func TestSlowTenant(t *testing.T) {
	plain := New(Config{Seed: 9, Tenants: 3})
	slow := New(Config{Seed: 9, Tenants: 3, Slow: map[string]float64{"tenant-02": 4}})
	seen := 0
	for range 5000 {
		a, b := plain.Next(), slow.Next()
		require.NoError(t, b.Validate())
		if a.Tenant != "tenant-02" {
			require.Equal(t, a, b)
			continue
		}
		seen++
		require.InEpsilon(t, 4*a.DurationMS, b.DurationMS, 0.01)
		require.InEpsilon(t, 4*(*a.UpstreamMS), *b.UpstreamMS, 0.01)
		a.DurationMS, a.UpstreamMS = b.DurationMS, b.UpstreamMS
		require.Equal(t, a, b)
	}
	require.Greater(t, seen, 1000)
}
