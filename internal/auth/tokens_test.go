package auth

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func testTokens(t *testing.T) *Tokens {
	tok, err := Parse([]byte(fmt.Sprintf(`
tokens:
  - {name: dev, sha256: %s, role: developer, tenants: [a, b]}
  - {name: cust, sha256: %s, role: customer, tenants: [c]}
  - {name: sre, sha256: %s, role: admin}
`, Digest("tok-dev"), Digest("tok-cust"), Digest("tok-admin"))))
	require.NoError(t, err)
	return tok
}

func TestParseRefuses(t *testing.T) {
	d := Digest("x")
	for name, bad := range map[string]string{
		"no name":            `{tokens: [{sha256: ` + d + `, role: admin}]}`,
		"plain token":        `{tokens: [{name: a, sha256: secret, role: admin}]}`,
		"upper-case digest":  `{tokens: [{name: a, sha256: ` + strings.ToUpper(d) + `, role: admin}]}`,
		"bad role":           `{tokens: [{name: a, sha256: ` + d + `, role: root}]}`,
		"dev no tenants":     `{tokens: [{name: a, sha256: ` + d + `, role: developer}]}`,
		"customer two":       `{tokens: [{name: a, sha256: ` + d + `, role: customer, tenants: [x, y]}]}`,
		"customer none":      `{tokens: [{name: a, sha256: ` + d + `, role: customer}]}`,
		"admin with tenants": `{tokens: [{name: a, sha256: ` + d + `, role: admin, tenants: [x]}]}`,
		"bad tenant":         `{tokens: [{name: a, sha256: ` + d + `, role: developer, tenants: [X]}]}`,
		"duplicate":          `{tokens: [{name: a, sha256: ` + d + `, role: admin}, {name: b, sha256: ` + d + `, role: admin}]}`,
		"unknown key":        `{tokens: [{name: a, sha256: ` + d + `, role: admin, tenant: x}]}`,
	} {
		_, err := Parse([]byte(bad))
		require.Error(t, err, name)
	}
}

func TestLookup(t *testing.T) {
	tok := testTokens(t)
	require.Equal(t, 3, tok.Len())
	p, ok := tok.Lookup("tok-dev")
	require.True(t, ok)
	require.Equal(t, "dev", p.Name)
	require.True(t, p.CanRead("b"))
	require.False(t, p.CanRead("c"))
	require.False(t, p.IsAdmin())
	p, ok = tok.Lookup("tok-cust")
	require.True(t, ok)
	require.True(t, p.CanRead("c"))
	require.False(t, p.CanRead("a"))
	p, ok = tok.Lookup("tok-admin")
	require.True(t, ok)
	require.True(t, p.IsAdmin())
	require.True(t, p.CanRead("anything"))
	for _, bad := range []string{"", "tok-de", "tok-dev ", "TOK-DEV", Digest("tok-dev")} {
		_, ok := tok.Lookup(bad)
		require.False(t, ok, "%q", bad)
	}
}

func TestBearer(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer abc":   "abc",
		"BEARER  abc ": "abc",
		"Basic abc":    "",
		"abc":          "",
		"Bearer ":      "",
		"":             "",
		"Bearer " + strings.Repeat("x", MaxTokenBytes):   strings.Repeat("x", MaxTokenBytes),
		"Bearer " + strings.Repeat("x", MaxTokenBytes+1): "",
	} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", header)
		got, ok := Bearer(r)
		require.Equal(t, want != "", ok, "%.40q", header)
		require.Equal(t, want, got)
	}
}

func TestExampleFilesParse(t *testing.T) {
	for _, f := range []string{"../../deploy/query-tokens.example.yaml", "../../deploy/logpeek-tokens.example.yaml"} {
		tok, err := Load(f)
		require.NoError(t, err, f)
		_, ok := tok.Lookup("dev-token")
		require.True(t, ok, "%s: the documented dev-token", f)
	}
	tok, err := Load("../../deploy/query-tokens.example.yaml")
	require.NoError(t, err)
	p, ok := tok.Lookup("acme-token")
	require.True(t, ok)
	require.Equal(t, []string{"tenant-01"}, p.Tenants)
}
