// Package yarn holds the YARN configuration of a Hadoop deployment of Hourglass.
package yarn

import (
	"encoding/xml"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type hadoopConf struct {
	Properties []struct {
		Name  string `xml:"name"`
		Value string `xml:"value"`
	} `xml:"property"`
}

func readConf(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var c hadoopConf
	require.NoError(t, xml.Unmarshal(b, &c))
	out := map[string]string{}
	for _, p := range c.Properties {
		_, dup := out[p.Name]
		require.False(t, dup, "property %s set twice", p.Name)
		out[p.Name] = strings.TrimSpace(p.Value)
	}
	return out
}

// The checks the CapacityScheduler makes when it loads the file (children's
// capacities sum to 100, maximum >= capacity, known states), plus the seed's split.
func TestCapacitySchedulerQueues(t *testing.T) {
	conf := readConf(t, "capacity-scheduler.xml")
	const root = "yarn.scheduler.capacity.root."
	queues := strings.Split(conf[root+"queues"], ",")
	require.ElementsMatch(t, []string{"sparkconnect", "default"}, queues)
	num := func(key string) float64 {
		v, ok := conf[key]
		require.True(t, ok, "%s is missing", key)
		f, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, key)
		return f
	}
	sum := 0.0
	for _, q := range queues {
		c, maxC := num(root+q+".capacity"), num(root+q+".maximum-capacity")
		require.Greater(t, c, 0.0, q)
		require.GreaterOrEqual(t, maxC, c, "%s: maximum-capacity below capacity", q)
		require.LessOrEqual(t, maxC, 100.0, q)
		am := num(root + q + ".maximum-am-resource-percent")
		require.True(t, am > 0 && am <= 1, "%s: maximum-am-resource-percent %v is a fraction", q, am)
		require.Contains(t, []string{"RUNNING", "STOPPED"}, conf[root+q+".state"], q)
		sum += c
	}
	require.InDelta(t, 100.0, sum, 1e-9, "children of root must sum to 100")
	require.Equal(t, 30.0, num(root+"sparkconnect.capacity"), "drivers: 30 % (seed 001)")
	require.Equal(t, 70.0, num(root+"default.capacity"), "executors: 70 % (seed 001)")
	// However idle the cluster, the drivers' queue never takes more than 40 %: the
	// executors keep at least 60 %.
	require.LessOrEqual(t, num(root+"sparkconnect.maximum-capacity"), 40.0)
}
