package archivequery

import (
	"errors"
	"fmt"
	"time"
)

// Limits bounds every size a caller controls.
type Limits struct {
	MaxSpan         time.Duration `yaml:"max_span"`         // longest to-from
	MaxFilters      int           `yaml:"max_filters"`      // filters per query
	MaxGroupBy      int           `yaml:"max_group_by"`     // group-by fields
	MaxAggregations int           `yaml:"max_aggregations"` // aggregations
	MaxOrder        int           `yaml:"max_order"`        // order keys
	MaxInList       int           `yaml:"max_in_list"`      // values of one `in` filter
	MaxValueBytes   int           `yaml:"max_value_bytes"`  // bytes of one string value
	DefaultLimit    int           `yaml:"default_limit"`    // rows when limit is 0
	MaxLimit        int           `yaml:"max_limit"`        // largest limit (rows over the service's inline-rows are written by Spark)
	MaxSQLBytes     int           `yaml:"max_sql_bytes"`    // bytes of free SQL
	MaxBodyBytes    int           `yaml:"max_body_bytes"`   // bytes of the query JSON
}

// DefaultLimits are the production bounds.
func DefaultLimits() Limits {
	return Limits{
		MaxSpan:         7 * 24 * time.Hour,
		MaxFilters:      32,
		MaxGroupBy:      8,
		MaxAggregations: 16,
		MaxOrder:        8,
		MaxInList:       256,
		MaxValueBytes:   1024,
		DefaultLimit:    1000,
		MaxLimit:        1_000_000,
		MaxSQLBytes:     64 << 10,
		MaxBodyBytes:    256 << 10,
	}
}

// Validate reports every problem of the limits.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxSpan < time.Hour || l.MaxSpan > 31*24*time.Hour {
		errs = append(errs, fmt.Errorf("max-span %s: must be in [1h, 31d]", l.MaxSpan))
	}
	for _, b := range []struct {
		name   string
		v, max int
	}{
		{"max-filters", l.MaxFilters, 1024}, {"max-group-by", l.MaxGroupBy, 64},
		{"max-aggregations", l.MaxAggregations, 256}, {"max-order", l.MaxOrder, 64},
		{"max-in-list", l.MaxInList, 10_000}, {"max-value-bytes", l.MaxValueBytes, 64 << 10},
		{"max-limit", l.MaxLimit, 10_000_000}, {"max-sql-bytes", l.MaxSQLBytes, 1 << 20},
		{"max-body-bytes", l.MaxBodyBytes, 16 << 20},
	} {
		if b.v < 1 || b.v > b.max {
			errs = append(errs, fmt.Errorf("%s %d: must be in [1, %d]", b.name, b.v, b.max))
		}
	}
	if l.DefaultLimit < 1 || l.DefaultLimit > l.MaxLimit {
		errs = append(errs, fmt.Errorf("default-limit %d: must be in [1, max-limit %d]", l.DefaultLimit, l.MaxLimit))
	}
	return errors.Join(errs...)
}
