package record

import (
	"slices"
	"strings"
)

// fieldIndex is each field's position in canonical order, for stable output.
var fieldIndex = func() map[string]int {
	m := make(map[string]int, len(fields))
	for i, f := range fields[:] {
		m[f.Name] = i
	}
	return m
}()

// sortProblems orders problems by field in canonical order (record-level
// problems first), then by code, so responses and tests are deterministic.
func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		ia, ib := -1, -1
		if a.Field != "" {
			ia = fieldIndex[a.Field]
		}
		if b.Field != "" {
			ib = fieldIndex[b.Field]
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(string(a.Code), string(b.Code))
	})
}
