package router

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	bad := DefaultConfig()
	bad.Brokers = nil
	bad.BatchSize = 0
	bad.BatchWait = 0
	bad.SessionTimeout = time.Second
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"brokers", "batch-size", "batch-wait", "session-timeout"} {
		require.ErrorContains(t, err, want)
	}
}
