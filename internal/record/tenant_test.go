package record

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tenantRef is the tenant rule as the README's record table writes it: the
// reference ValidTenant is checked against.
var tenantRef = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

var tenantCases = []string{
	"a", "acme", "acme-1", "0", "-", "--", "tenant-01", strings.Repeat("a", 63),
	"", strings.Repeat("a", 64), "Acme", "ACME", "acme_1", "acme.1", "acme 1", " acme", "acme\n",
	"acme\x00", "é", "a/b", "tenant=a", "a-z", "\xff",
}

func TestValidTenant(t *testing.T) {
	for _, s := range tenantCases {
		require.Equal(t, tenantRef.MatchString(s), ValidTenant(s), "%q", s)
	}
	require.True(t, ValidTenant(strings.Repeat("z", MaxTenantLen)))
	require.False(t, ValidTenant(strings.Repeat("z", MaxTenantLen+1)))
}

// FuzzValidTenant: ValidTenant agrees with the regular expression.
//
//	go test ./internal/record -run '^$' -fuzz FuzzValidTenant -fuzztime 30s
func FuzzValidTenant(f *testing.F) {
	for _, s := range tenantCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidTenant(s), tenantRef.MatchString(s); got != want {
			t.Fatalf("ValidTenant(%q) = %v, the rule says %v", s, got, want)
		}
	})
}
