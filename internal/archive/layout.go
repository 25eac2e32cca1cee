package archive

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Extension is the suffix of every part file.
const Extension = ".jsonl.gz"

// tempPrefix starts the name of a part file being written.
const tempPrefix = "_tmp."

// Hour is one partition directory of the archive: a tenant and an hour of
// event time.
type Hour struct {
	Tenant string
	Start  time.Time // UTC, on the hour
}

// HourOf returns the hour of event time ts for tenant.
func HourOf(tenant string, ts time.Time) Hour {
	return Hour{Tenant: tenant, Start: ts.UTC().Truncate(time.Hour)}
}

// TenantDir is the directory of a tenant, relative to the root.
func TenantDir(tenant string) string { return "tenant=" + tenant }

// DayDir is the directory of one UTC day of a tenant.
func DayDir(tenant string, day time.Time) string {
	return TenantDir(tenant) + "/dt=" + day.UTC().Format("2006-01-02")
}

// Dir is the hour's directory, relative to the root.
func (h Hour) Dir() string {
	return DayDir(h.Tenant, h.Start) + "/hour=" + h.Start.UTC().Format("15")
}

func (h Hour) String() string { return h.Dir() }

// ParseHourDir parses a directory as Dir writes it.
func ParseHourDir(dir string) (Hour, error) {
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	if len(parts) != 3 {
		return Hour{}, fmt.Errorf("archive: %q: want tenant=<t>/dt=YYYY-MM-DD/hour=HH", dir)
	}
	tenant, ok := strings.CutPrefix(parts[0], "tenant=")
	if !ok || !record.ValidTenant(tenant) {
		return Hour{}, fmt.Errorf("archive: %q: bad tenant element %q", dir, parts[0])
	}
	day, err := ParseDayName(parts[1])
	if err != nil {
		return Hour{}, fmt.Errorf("archive: %q: %w", dir, err)
	}
	hh, err := ParseHourName(parts[2])
	if err != nil {
		return Hour{}, fmt.Errorf("archive: %q: %w", dir, err)
	}
	return Hour{Tenant: tenant, Start: day.Add(time.Duration(hh) * time.Hour)}, nil
}

// ParseDayName parses a "dt=YYYY-MM-DD" directory name.
func ParseDayName(name string) (time.Time, error) {
	v, ok := strings.CutPrefix(name, "dt=")
	if !ok || len(v) != 10 {
		return time.Time{}, fmt.Errorf("bad day element %q: want dt=YYYY-MM-DD", name)
	}
	day, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad day element %q: want dt=YYYY-MM-DD", name)
	}
	return day, nil
}

// ParseHourName parses an "hour=HH" directory name.
func ParseHourName(name string) (int, error) {
	v, ok := strings.CutPrefix(name, "hour=")
	if !ok || len(v) != 2 || v[0] < '0' || v[0] > '2' || v[1] < '0' || v[1] > '9' {
		return 0, fmt.Errorf("bad hour element %q: want hour=00-23", name)
	}
	hh, _ := strconv.Atoi(v)
	if hh > 23 {
		return 0, fmt.Errorf("bad hour element %q: want hour=00-23", name)
	}
	return hh, nil
}

// Part identifies a part file inside an hour directory: the Kafka partition
// and the offsets of its first and last record.
type Part struct {
	Partition   int
	First, Last int64
}

// Name is the part file's final name.
func (p Part) Name() string {
	return "part-" + strconv.Itoa(p.Partition) + "-" + strconv.FormatInt(p.First, 10) + "-" +
		strconv.FormatInt(p.Last, 10) + Extension
}

// TempName is the name a part file is written under before its rename.
// nonce tells apart concurrent attempts; it must not contain "/".
func (p Part) TempName(nonce string) string { return tempPrefix + p.Name() + "." + nonce }

// Contains reports whether offset o lies in the part's range.
func (p Part) Contains(o int64) bool { return p.First <= o && o <= p.Last }

// ParsePartName parses a final part file name.
func ParsePartName(name string) (Part, error) {
	bad := func() (Part, error) {
		return Part{}, fmt.Errorf("archive: %q is not a part file name (part-<partition>-<first>-<last>%s)", name, Extension)
	}
	v, ok := strings.CutPrefix(name, "part-")
	if !ok {
		return bad()
	}
	if v, ok = strings.CutSuffix(v, Extension); !ok {
		return bad()
	}
	fields := strings.Split(v, "-")
	if len(fields) != 3 {
		return bad()
	}
	var nums [3]int64
	for i, f := range fields {
		if f == "" || len(f) > 19 || (len(f) > 1 && f[0] == '0') {
			return bad()
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || n < 0 {
			return bad()
		}
		nums[i] = n
	}
	if nums[0] > 1<<31-1 || nums[1] > nums[2] {
		return bad()
	}
	return Part{Partition: int(nums[0]), First: nums[1], Last: nums[2]}, nil
}

// ParseTempName parses a temporary part file name; ok is false for any other name.
func ParseTempName(name string) (p Part, ok bool) {
	v, found := strings.CutPrefix(name, tempPrefix)
	if !found {
		return Part{}, false
	}
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return Part{}, false
	}
	p, err := ParsePartName(v[:i])
	return p, err == nil
}

// Hidden reports whether readers ignore a name (temporary and other
// underscore- or dot-prefixed files, as Hadoop input formats do).
func Hidden(name string) bool { return strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") }

// Join joins slash-separated path elements.
func Join(elem ...string) string { return path.Join(elem...) }
