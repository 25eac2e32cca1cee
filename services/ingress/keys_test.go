package ingress

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The keys file's own rules (on top of internal/auth's digests): upper-case
// hex is accepted, every problem is reported with the key's index, and a
// disabled key is still found (the handler answers 403 for it).
func TestKeysFileRules(t *testing.T) {
	write := func(body string) string {
		path := filepath.Join(t.TempDir(), "keys.yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		return path
	}

	k, err := LoadKeys(write("keys:\n" +
		"  - {tenant: acme, sha256: " + strings.ToUpper(digest("acme-key")) + ", name: edge-1}\n" +
		"  - {tenant: globex, sha256: " + digest("globex-key") + ", disabled: true}\n"))
	require.NoError(t, err)
	require.Equal(t, 2, k.Len())
	e, ok := k.Lookup("acme-key")
	require.True(t, ok, "an upper-case digest is accepted")
	require.Equal(t, keyEntry{Tenant: "acme", SHA256: digest("acme-key"), Name: "edge-1"}, e)
	e, ok = k.Lookup("globex-key")
	require.True(t, ok)
	require.True(t, e.Disabled)
	for _, bad := range []string{"", "acme-key ", "ACME-KEY", digest("acme-key")} {
		_, ok := k.Lookup(bad)
		require.False(t, ok, "%q", bad)
	}

	path := write("keys:\n" +
		"  - {tenant: acme, sha256: " + digest("a") + "}\n" +
		"  - {tenant: Bad_Tenant, sha256: " + digest("b") + "}\n" +
		"  - {tenant: acme, sha256: the-key-itself}\n" +
		"  - {tenant: initech, sha256: " + digest("a") + "}\n")
	_, err = LoadKeys(path)
	require.EqualError(t, err, "keys: "+path+": "+
		`key 1: tenant "Bad_Tenant" must match [a-z0-9-]{1,63}; `+
		"key 2 (acme): sha256 must be 64 hex digits (store the digest, never the key); "+
		"key 3 (initech): the same key is listed twice")

	_, err = LoadKeys(write("keys:\n  - {tenant: acme, sha256: " + digest("a") + ", owner: x}\n"))
	require.ErrorContains(t, err, "keys: parse")
	require.ErrorContains(t, err, "owner")
}
