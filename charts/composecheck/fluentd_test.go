package composecheck

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
)

func mounts(s types.ServiceConfig) map[string]types.ServiceVolumeConfig {
	out := map[string]types.ServiceVolumeConfig{}
	for _, v := range s.Volumes {
		out[v.Target] = v
	}
	return out
}

// TestComposeFluentdHopSecured: the aggregator's forward input is not on the
// host, it gets its certificate and the shared key from the volume the
// fluentd-pki job fills, and the two senders get only the CA and the key.
func TestComposeFluentdHopSecured(t *testing.T) {
	p, err := Load(context.Background(), absRoot(t), "docker-compose.yml", composeFile(t))
	require.NoError(t, err)
	agg, fwd, ing := p.Services["fluentd"], p.Services["fluentd-forwarder"], p.Services["ingress"]

	require.Empty(t, agg.Ports, "the forward input is reached on the compose network only")
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, agg.DependsOn["fluentd-pki"].Condition)
	require.Equal(t, "fluentd-tls", mounts(agg)["/fluentd/tls"].Source)
	require.True(t, mounts(agg)["/fluentd/tls"].ReadOnly)
	require.Equal(t, "/fluentd/tls/shared_key", *agg.Environment["FLUENTD_SHARED_KEY_FILE"])

	require.Equal(t, "fluentd-client", mounts(fwd)["/fluentd/tls"].Source, "the forwarder sees the CA, not the server key")
	require.Equal(t, "/fluentd/tls/shared_key", *fwd.Environment["FLUENTD_SHARED_KEY_FILE"])

	require.Equal(t, "fluentd-client", mounts(ing)["/etc/hourglass/fluentd"].Source)
	cmd := strings.Join(ing.Command, " ")
	require.Contains(t, cmd, "--fluentd-ca-file /etc/hourglass/fluentd/ca.crt")
	require.Contains(t, cmd, "--fluentd-shared-key-file /etc/hourglass/fluentd/shared_key")
	require.False(t, slices.Contains(ing.Command, "--fluentd-tls=false"))

	pki := strings.Join(p.Services["fluentd-pki"].Command, " ")
	require.Contains(t, pki, "subjectAltName=DNS:fluentd", "the certificate names the host the senders dial")
	require.Contains(t, pki, "openssl rand -hex 32 > shared_key", "a random key, not a well-known default")
}
