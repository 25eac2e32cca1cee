package record

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TenantPattern is ValidTenant, and every document that spells the tenant
// rule as a pattern (JSON schemas cannot call Go) spells exactly it.
func TestTenantPatternCopies(t *testing.T) {
	re := regexp.MustCompile(TenantPattern)
	for _, s := range []string{"", "a", "tenant-01", "Tenant", "a_b", "a.b", "é", strings.Repeat("a", 63), strings.Repeat("a", 64),
		"-", "0", "a b", "a\n", "tenant-01\x00"} {
		require.Equal(t, ValidTenant(s), re.MatchString(s), "%q", s)
	}
	files, err := filepath.Glob("../../services/*/openapi.json")
	require.NoError(t, err)
	files = append(files, "../../charts/hourglass/values.schema.json")
	require.GreaterOrEqual(t, len(files), 4, "ingress, logpeek, query (and more) OpenAPI documents and the chart schema")
	// A pattern of tenant-name shape: a character class of lower-case letters
	// and digits with a length bound.
	tenantish := regexp.MustCompile(`"pattern":\s*"(\^\[a-z0-9[^"]*)"`)
	found := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range tenantish.FindAllSubmatch(b, -1) {
			found++
			require.Equal(t, TenantPattern, string(m[1]), "%s spells the tenant pattern differently", f)
		}
	}
	require.GreaterOrEqual(t, found, 4)
}
