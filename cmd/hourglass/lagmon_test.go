package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLagmonUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, runLagmon(context.Background(), []string{"--help"}, &out, &errOut))
	require.Contains(t, errOut.String(), "Usage: hourglass lagmon")
	require.Contains(t, errOut.String(), "HOURGLASS_LAGMON_POLL_INTERVAL")

	errOut.Reset()
	require.ErrorIs(t, runLagmon(context.Background(), []string{"--nope"}, &out, &errOut), errUsage)

	// A bad configuration is refused with every problem named.
	err := runLagmon(context.Background(), []string{"--catalog", "", "--poll-interval", "1ms", "--allow", "("}, &out, &errOut)
	require.ErrorContains(t, err, "poll-interval")
	require.ErrorContains(t, err, "group pattern")

	err = runLagmon(context.Background(), []string{"--catalog", "", "--auto-offset-reset", "none"}, &out, &errOut)
	require.ErrorContains(t, err, "auto-offset-reset")
	require.ErrorContains(t, err, "earliest or latest")

	err = runLagmon(context.Background(), []string{"--catalog", "", "--isolation-level", "dirty"}, &out, &errOut)
	require.ErrorContains(t, err, "--isolation-level")
	require.ErrorContains(t, err, "read_committed or read_uncommitted")
}
