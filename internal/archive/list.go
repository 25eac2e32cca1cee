package archive

import (
	"context"
	"slices"
	"time"
)

// PartFile is a part file found in the archive.
type PartFile struct {
	Hour Hour
	Part Part
	Size int64
}

// Path is the file's name relative to the root.
func (f PartFile) Path() string { return f.Hour.Dir() + "/" + f.Part.Name() }

// ListHour lists the part files of an hour, ordered by partition and first
// offset, and the names (relative to the root) of its temporary files. A
// missing directory is an empty hour. Other names are ignored.
func ListHour(ctx context.Context, fsys FS, h Hour) (parts []PartFile, temps []string, err error) {
	entries, err := fsys.ReadDir(ctx, h.Dir())
	if IsNotExist(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		if e.Dir {
			continue
		}
		if _, ok := ParseTempName(e.Name); ok {
			temps = append(temps, h.Dir()+"/"+e.Name)
			continue
		}
		if Hidden(e.Name) {
			continue
		}
		p, err := ParsePartName(e.Name)
		if err != nil {
			continue
		}
		parts = append(parts, PartFile{Hour: h, Part: p, Size: e.Size})
	}
	slices.SortFunc(parts, func(a, b PartFile) int {
		if a.Part.Partition != b.Part.Partition {
			return a.Part.Partition - b.Part.Partition
		}
		return int(a.Part.First - b.Part.First)
	})
	return parts, temps, nil
}

// ListHours returns the hours of tenant that have a directory and start in
// [from, to), in time order. It lists only the day directories that overlap
// the range.
func ListHours(ctx context.Context, fsys FS, tenant string, from, to time.Time) ([]Hour, error) {
	days, err := fsys.ReadDir(ctx, TenantDir(tenant))
	if IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Hour
	for _, d := range days {
		if !d.Dir {
			continue
		}
		day, err := ParseDayName(d.Name)
		if err != nil || !day.Before(to) || !day.Add(24*time.Hour).After(from) {
			continue
		}
		hours, err := fsys.ReadDir(ctx, DayDir(tenant, day))
		if IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range hours {
			hh, err := ParseHourName(e.Name)
			if err != nil || !e.Dir {
				continue
			}
			start := day.Add(time.Duration(hh) * time.Hour)
			if !start.Before(from.Truncate(time.Hour)) && start.Before(to) {
				out = append(out, Hour{Tenant: tenant, Start: start})
			}
		}
	}
	slices.SortFunc(out, func(a, b Hour) int { return a.Start.Compare(b.Start) })
	return out, nil
}
