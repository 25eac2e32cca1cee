package flagenv

import (
	"bytes"
	"flag"
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
