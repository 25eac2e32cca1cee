package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSubmitArgs(t *testing.T) {
	c := DefaultConfig()
	c.Master = "yarn"
	c.DeployMode = "cluster"
	c.Jars = []string{"/a.jar", "/b.jar"}
	c.Conf = []string{"spark.executor.memory=2g"}
	c.CheckpointRoot = "hdfs://nn:8020/hourglass/checkpoints"
	c.MaxOffsetsPerTrigger = 100
	args := strings.Join(c.SubmitArgs([]string{"/s/latency.json"}, "/state/latency"), " ")
	for _, want := range []string{
		"--master yarn", "--deploy-mode cluster", "--name hourglass-metrics-latency", "--jars /a.jar,/b.jar",
		"--conf spark.sql.shuffle.partitions=4", "--conf spark.executor.memory=2g",
		"metrics-jobs/run_job.py stream --spec /s/latency.json",
		"--checkpoint-root hdfs://nn:8020/hourglass/checkpoints", "--max-offsets-per-trigger 100",
		"--status-dir /state/latency",
	} {
		require.Contains(t, args, want)
	}
	require.NotContains(t, args, "spark.driver.host", "only local masters bind to loopback")

	c = DefaultConfig()
	c.StateDir = "/var/lib/hourglass/jobs"
	args = strings.Join(c.SubmitArgs([]string{"/s/x.json"}, ""), " ")
	require.Contains(t, args, "--master local[*]")
	require.Contains(t, args, "--checkpoint-root /var/lib/hourglass/jobs/checkpoints")
	require.NotContains(t, args, "--status-dir")

	b := strings.Join(c.BatchArgs("/s/x.json", time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC), "--kafka-to", "T"), " ")
	require.Contains(t, b, "run_job.py batch --spec /s/x.json --hour 2026-01-01T01:00:00Z")
	require.True(t, strings.HasSuffix(b, "--kafka-to T"))
}

func TestValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	c := DefaultConfig()
	c.Master, c.DeployMode, c.Conf, c.BackoffMin = "", "weird", []string{"novalue"}, 0
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"master", "deploy-mode", "conf", "backoff"} {
		require.Contains(t, err.Error(), want)
	}
}
