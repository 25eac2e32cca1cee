package auth

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseDigest(t *testing.T) {
	d := Digest("secret")
	got, ok := ParseDigest(d)
	require.True(t, ok)
	require.Equal(t, sha256.Sum256([]byte("secret")), got)
	for _, bad := range []string{
		"", "secret", strings.ToUpper(d), d[:63], d + "0", " " + d[1:], d[:63] + "g", d[:63] + "\n", d[:63] + "\x00",
	} {
		_, ok := ParseDigest(bad)
		require.False(t, ok, "%q", bad)
	}
}

func TestDigestMap(t *testing.T) {
	var m DigestMap[string]
	_, ok := m.Lookup("a")
	require.False(t, ok, "the zero value is empty")
	require.Zero(t, m.Len())

	da, _ := ParseDigest(Digest("key-a"))
	db, _ := ParseDigest(Digest("key-b"))
	require.True(t, m.Add(da, "acme"))
	require.True(t, m.Add(db, "globex"))
	require.False(t, m.Add(da, "other"), "the same digest twice")
	require.Equal(t, 2, m.Len())

	v, ok := m.Lookup("key-a")
	require.True(t, ok)
	require.Equal(t, "acme", v, "the first value stays")
	v, ok = m.Lookup("key-b")
	require.True(t, ok)
	require.Equal(t, "globex", v)
	for _, bad := range []string{"", "key-", "key-a ", "KEY-A", Digest("key-a")} {
		_, ok := m.Lookup(bad)
		require.False(t, ok, "%q", bad)
	}
}
