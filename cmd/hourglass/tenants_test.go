package main

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTenantsUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	ctx := context.Background()
	require.ErrorIs(t, runTenants(ctx, nil, &out, &errOut), errUsage)
	require.Contains(t, errOut.String(), "provision <tenant>")
	require.ErrorIs(t, runTenants(ctx, []string{"provision"}, &out, &errOut), errUsage)
	require.ErrorContains(t, runTenants(ctx, []string{"provision", "Not_A_Tenant"}, &out, &errOut), `tenant "Not_A_Tenant"`)
}

func TestCatalogRenderKibanaIsTheCommittedFile(t *testing.T) {
	var out, errOut bytes.Buffer
	err := runCatalog(context.Background(), []string{"--catalog", "../../metrics-jobs/catalog.yaml", "render", "kibana"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	want, err := os.ReadFile("../../kibana/saved-objects.ndjson")
	require.NoError(t, err)
	require.Equal(t, string(want), out.String(), "regenerate: hourglass catalog render kibana > kibana/saved-objects.ndjson")
}
