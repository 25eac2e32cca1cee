//go:build integration

package ingress_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/dlq"
	"github.com/hourglass-io/hourglass/internal/stacktest"
)

func TestIngress100kExactlyOnce(t *testing.T) {
	brokers := stacktest.Brokers(t)
	topic, dlqTopic := stacktest.UniqueName("test-ingress-raw"), stacktest.UniqueName("test-ingress-dlq")
	stacktest.DeleteTopicsOnCleanup(t, brokers, topic, dlqTopic)
	svc := startIngress(t, brokers, topic, dlqTopic)
	accepted, retries, rejected := sendAll(t, svc, 5, 100_000, 0.005, nil)
	require.Zero(t, retries, "a healthy broker never makes the ingress answer 503")

	got := idsIn(t, brokers, topic)
	require.Equal(t, len(accepted), len(got), "the raw topic holds exactly the accepted records")
	for id, n := range got {
		require.True(t, accepted[id], "record %s was not accepted but is in the raw topic", id)
		require.Equal(t, 1, n, "record %s is in the raw topic %d times", id, n)
	}
	dead := stacktest.ReadAll(t, brokers, dlqTopic)
	require.Len(t, dead, rejected, "every rejected record is in the DLQ")
	for _, km := range dead {
		m, err := dlq.Parse(km)
		require.NoError(t, err)
		require.Equal(t, dlq.StageIngress, m.Stage)
		require.NotEmpty(t, m.Reason)
		require.NotEmpty(t, m.Key, "keyed by tenant")
	}
	t.Logf("100000 records: %d accepted, exactly once each; %d rejected, all in the DLQ", len(accepted), rejected)
}

func TestIngressBrokerDownGives503NotLoss(t *testing.T) {
	k := stacktest.StartPrivateKafka(t)
	svc := startIngress(t, k.Addr, "test-raw", "test-dlq")
	require.Eventually(t, func() bool { return svc.Ready(context.Background()) == nil }, 30*time.Second, 100*time.Millisecond)

	var restarted sync.WaitGroup
	restarted.Add(1)
	accepted, retries, _ := sendAll(t, svc, 6, 40_000, 0, func(i int) {
		if i == 20 { // a fifth of the way in: the broker goes away for a while
			k.Stop()
			require.Eventually(t, func() bool { return svc.Ready(context.Background()) != nil }, 30*time.Second, 50*time.Millisecond,
				"/readyz reports the broker gone")
			go func() {
				defer restarted.Done()
				time.Sleep(8 * time.Second) // the outage: clients see 503 and retry meanwhile
				k.Start()
			}()
		}
	})
	restarted.Wait()
	require.Positive(t, retries, "requests during the outage were answered 503 and retried")

	got := idsIn(t, k.Addr, "test-raw")
	var dups int
	for id := range accepted {
		require.Positive(t, got[id], "accepted record %s is missing after the broker came back", id)
		dups += got[id] - 1
	}
	t.Logf("broker down for ~8s: %d retries after 503; all %d accepted records present; %d duplicates from retried batches",
		retries, len(accepted), dups)
}
