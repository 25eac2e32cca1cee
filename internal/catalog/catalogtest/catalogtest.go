// Package catalogtest gives tests the shipped metric catalog
// (metrics-jobs/catalog.yaml), wherever the test's package lives.
package catalogtest

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hourglass-io/hourglass/internal/catalog"
)

// ShippedPath is the path of metrics-jobs/catalog.yaml.
func ShippedPath() string {
	_, file, _, _ := runtime.Caller(0) // internal/catalog/catalogtest/catalogtest.go
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "metrics-jobs", "catalog.yaml")
}

// Shipped loads the shipped catalog; a catalog that does not load fails the test.
func Shipped(t testing.TB) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load(ShippedPath())
	if err != nil {
		t.Fatalf("catalogtest: the shipped catalog: %v", err)
	}
	return c
}
