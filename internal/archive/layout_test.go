package archive

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHourDirRoundTrip(t *testing.T) {
	ts := time.Date(2026, 3, 9, 7, 59, 59, 999, time.FixedZone("x", 3600))
	h := HourOf("acme-1", ts)
	require.Equal(t, "tenant=acme-1/dt=2026-03-09/hour=06", h.Dir(), "UTC hour of the event time")
	got, err := ParseHourDir(h.Dir())
	require.NoError(t, err)
	require.Equal(t, h, got)
}

func TestParseHourDirBad(t *testing.T) {
	for _, dir := range []string{
		"", "tenant=a/dt=2026-01-01", "tenant=A/dt=2026-01-01/hour=00", "tenant=a/dt=2026-13-01/hour=00",
		"tenant=a/dt=2026-01-01/hour=24", "tenant=a/dt=2026-01-01/hour=7", "tenant=a/day=2026-01-01/hour=00",
		"tenant=a/dt=2026-01-01/hour=00/x", "tenant=/dt=2026-01-01/hour=00",
	} {
		_, err := ParseHourDir(dir)
		require.Error(t, err, dir)
	}
}

func TestPartNames(t *testing.T) {
	p := Part{Partition: 3, First: 100, Last: 250}
	require.Equal(t, "part-3-100-250.jsonl.gz", p.Name())
	got, err := ParsePartName(p.Name())
	require.NoError(t, err)
	require.Equal(t, p, got)
	require.True(t, p.Contains(100) && p.Contains(250) && !p.Contains(99) && !p.Contains(251))

	tmp := p.TempName("abc123")
	require.True(t, Hidden(tmp))
	tp, ok := ParseTempName(tmp)
	require.True(t, ok)
	require.Equal(t, p, tp)
	_, ok = ParseTempName(p.Name())
	require.False(t, ok)

	for _, bad := range []string{
		"part-3-100-250.jsonl", "part-3-100.jsonl.gz", "part-3-250-100.jsonl.gz", "part-a-1-2.jsonl.gz",
		"part--1-1-2.jsonl.gz", "part-03-1-2.jsonl.gz", "part-3-1-2-4.jsonl.gz", "x-3-1-2.jsonl.gz",
		"part-3-1-99999999999999999999.jsonl.gz", "part-9999999999-1-2.jsonl.gz",
	} {
		_, err := ParsePartName(bad)
		require.Error(t, err, bad)
	}
}

func TestLocalListing(t *testing.T) {
	ctx := context.Background()
	fsys, err := NewLocal(t.TempDir())
	require.NoError(t, err)
	h1 := HourOf("acme", time.Date(2026, 1, 1, 23, 10, 0, 0, time.UTC))
	h2 := HourOf("acme", time.Date(2026, 1, 2, 0, 10, 0, 0, time.UTC))
	for _, name := range []string{
		h1.Dir() + "/" + Part{1, 10, 20}.Name(),
		h1.Dir() + "/" + Part{0, 5, 9}.Name(),
		h1.Dir() + "/" + Part{0, 1, 4}.Name(),
		h1.Dir() + "/" + Part{0, 30, 40}.TempName("n"),
		h1.Dir() + "/_SUCCESS",
		h2.Dir() + "/" + Part{0, 50, 60}.Name(),
	} {
		require.NoError(t, WriteFile(ctx, fsys, name, []byte("x")))
	}
	parts, temps, err := ListHour(ctx, fsys, h1)
	require.NoError(t, err)
	require.Len(t, parts, 3)
	require.Equal(t, Part{0, 1, 4}, parts[0].Part)
	require.Equal(t, Part{0, 5, 9}, parts[1].Part)
	require.Equal(t, Part{1, 10, 20}, parts[2].Part)
	require.Equal(t, []string{h1.Dir() + "/" + Part{0, 30, 40}.TempName("n")}, temps)

	hours, err := ListHours(ctx, fsys, "acme", h1.Start, h2.Start.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, []Hour{h1, h2}, hours)
	hours, err = ListHours(ctx, fsys, "acme", h2.Start, h2.Start.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, []Hour{h2}, hours)
	hours, err = ListHours(ctx, fsys, "nobody", h1.Start, h2.Start)
	require.NoError(t, err)
	require.Empty(t, hours)

	// Rename replaces, Create refuses an existing name, names cannot escape the root.
	require.NoError(t, fsys.Rename(ctx, h2.Dir()+"/"+Part{0, 50, 60}.Name(), h1.Dir()+"/"+Part{1, 10, 20}.Name()))
	_, err = fsys.Create(ctx, h1.Dir()+"/"+Part{1, 10, 20}.Name())
	require.Error(t, err)
	_, err = fsys.Open(ctx, "../etc/passwd")
	require.Error(t, err)
	r, err := fsys.Open(ctx, h1.Dir()+"/"+Part{1, 10, 20}.Name())
	require.NoError(t, err)
	b, _ := io.ReadAll(r)
	r.Close()
	require.Equal(t, "x", string(b))
	_, err = fsys.Stat(ctx, h2.Dir()+"/"+Part{0, 50, 60}.Name())
	require.True(t, IsNotExist(err))
}
