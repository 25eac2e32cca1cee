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
