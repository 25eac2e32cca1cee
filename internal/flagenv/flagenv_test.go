package flagenv

import (
	"bytes"
	"context"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPrecedence(t *testing.T) {
	t.Setenv("HOURGLASS_LISTEN_ADDR", "env:1")
	t.Setenv("HOURGLASS_POLL_INTERVAL", "5s")
	t.Setenv("HOURGLASS_OTHER", "shared")
	t.Setenv("HOURGLASS_X_OTHER", "specific")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	addr := fs.String("listen-addr", "default:1", "")
	poll := fs.Duration("poll-interval", time.Second, "")
	other := fs.String("other", "d", "")
	require.NoError(t, Parse(fs, []string{"--listen-addr", "flag:1"}))
	require.Equal(t, "flag:1", *addr, "flag beats env")
	require.Equal(t, 5*time.Second, *poll, "env beats default")
	require.Equal(t, "specific", *other, "command-specific beats shared")
}

func TestBadEnvNamesVariable(t *testing.T) {
	t.Setenv("HOURGLASS_POLL_INTERVAL", "soon")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Duration("poll-interval", time.Second, "")
	err := Parse(fs, nil)
	require.ErrorContains(t, err, "HOURGLASS_POLL_INTERVAL")
}

func TestUsageShowsEnv(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var b bytes.Buffer
	fs.SetOutput(&b)
	fs.String("catalog", "c.yaml", "catalog file")
	Usage(fs, "hourglass x", "Does x.")()
	require.Contains(t, b.String(), "--catalog  [HOURGLASS_X_CATALOG or HOURGLASS_CATALOG]")
	require.Contains(t, b.String(), `(default "c.yaml")`)
}

// Shared values from the context fill what the command line and the
// environment leave unset, and never touch the environment.
func TestSharedFromContext(t *testing.T) {
	t.Setenv("HOURGLASS_BROKERS", "env:9092")
	ctx := WithShared(context.Background(), map[string]string{"brokers": "shared:9092", "catalog": "c.yaml", "es-url": "shared-es", "poll-interval": "soon"})
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	brokers := fs.String("brokers", "d", "")
	catalog := fs.String("catalog", "d", "")
	es := fs.String("es-url", "d", "")
	require.NoError(t, ParseContext(ctx, fs, []string{"--es-url", "flag-es"}))
	require.Equal(t, "env:9092", *brokers, "the environment beats shared")
	require.Equal(t, "c.yaml", *catalog, "shared beats the default")
	require.Equal(t, "flag-es", *es, "the command line beats shared")
	_, set := os.LookupEnv("HOURGLASS_CATALOG")
	require.False(t, set, "no environment variable set")

	bad := flag.NewFlagSet("y", flag.ContinueOnError)
	bad.Duration("poll-interval", time.Second, "")
	require.ErrorContains(t, ParseContext(ctx, bad, nil), "shared.poll-interval")
}
