package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const shipped = "../../metrics-jobs/catalog.yaml"

func TestShippedCatalog(t *testing.T) {
	c, err := Load(shipped)
	require.NoError(t, err)
	var names []string
	for _, m := range c.Metrics {
		names = append(names, m.Name)
		require.Equal(t, []Duration{{time.Minute}, {time.Hour}}, m.Windows, m.Name)
		require.Equal(t, []string{"tenant"}, m.GroupBy, m.Name)
		require.Equal(t, time.Hour, m.FreshnessSLA.Duration)
	}
	require.Equal(t, []string{"avg_rtt", "request_rate", "error_rate", "latency", "bandwidth", "unique_clients"}, names)
	lat, ok := c.Metric("latency")
	require.True(t, ok)
	require.Equal(t, []string{"duration_ms_p50", "duration_ms_p95", "duration_ms_p99", "avg_duration_ms"}, lat.Outputs())
	require.Equal(t, []string{"timestamp", "tenant", "duration_ms"}, lat.Projection())
}

// Every testdata/*.bad.yaml must fail with errors containing each line of its
// leading `# want:` comments; every *.good.yaml must load.
func TestTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			_, err = Parse(data)
			if strings.HasSuffix(f, ".good.yaml") {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var wants int
			for _, line := range strings.Split(string(data), "\n") {
				if want, ok := strings.CutPrefix(line, "# want: "); ok {
					wants++
					require.Contains(t, err.Error(), want)
				}
			}
			require.NotZero(t, wants, "a bad file must say which errors it wants")
			require.Equal(t, wants, strings.Count(err.Error(), "\n")+1, "exactly the wanted errors:\n%s", err)
		})
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", time.Hour: "1h", 90 * time.Second: "1m30s",
		10 * time.Minute: "10m", 90 * time.Minute: "1h30m", 5 * time.Second: "5s", 0: "0s"} {
		require.Equal(t, want, Duration{d}.String())
	}
}

func TestPercentileSuffix(t *testing.T) {
	require.Equal(t, "p50", PercentileSuffix(50))
	require.Equal(t, "p99_9", PercentileSuffix(99.9))
}
