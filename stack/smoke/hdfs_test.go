//go:build integration

package smoke

import (
	"crypto/rand"
	"io"
	"path"
	"sort"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/stretchr/testify/require"

	"github.com/hourglass-io/hourglass/internal/stacktest"
)

// TestHDFSSmoke writes, renames, lists and reads back files on the stack's HDFS
// through the native RPC and data-transfer protocols (what colinmarc/hdfs
// speaks), so it proves the DataNode is reachable at the address the NameNode
// hands out, not just that the NameNode answers.
func TestHDFSSmoke(t *testing.T) {
	client, err := hdfs.NewClient(hdfs.ClientOptions{
		Addresses: []string{stacktest.Get(t, "HOURGLASS_HDFS_NAMENODE")},
		User:      "hourglass",
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })

	dir := "/" + stacktest.UniqueName("smoke-hdfs")
	require.NoError(t, client.MkdirAll(dir, 0o755))
	t.Cleanup(func() { _ = client.RemoveAll(dir) })

	// A small file: a few KB, well inside one 64 KB packet.
	small := randomBytes(t, 5*1024+7)
	writeFile(t, client, path.Join(dir, "small.tmp"), small, 0)
	require.NoError(t, client.Rename(path.Join(dir, "small.tmp"), path.Join(dir, "small.bin")))

	// A larger file: many packets, and with a 1 MiB block size (the NameNode's
	// minimum) several blocks, so the writer goes back to the NameNode for new
	// block locations mid-file.
	const blockSize = 1 << 20
	large := randomBytes(t, 5*blockSize+123)
	writeFile(t, client, path.Join(dir, "large.bin"), large, blockSize)

	entries, err := client.ReadDir(dir)
	require.NoError(t, err)
	sizes := map[string]int64{}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
		sizes[e.Name()] = e.Size()
	}
	sort.Strings(names)
	require.Equal(t, []string{"large.bin", "small.bin"}, names)
	require.Equal(t, int64(len(small)), sizes["small.bin"])
	require.Equal(t, int64(len(large)), sizes["large.bin"])

	got, err := client.ReadFile(path.Join(dir, "small.bin"))
	require.NoError(t, err)
	require.Equal(t, small, got)

	got, err = client.ReadFile(path.Join(dir, "large.bin"))
	require.NoError(t, err)
	require.Equal(t, large, got)

	// A positioned read across a block boundary.
	f, err := client.Open(path.Join(dir, "large.bin"))
	require.NoError(t, err)
	defer f.Close()
	part := make([]byte, 4096)
	_, err = f.ReadAt(part, 2*blockSize-2048)
	require.NoError(t, err)
	require.Equal(t, large[2*blockSize-2048:2*blockSize+2048], part)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, err := io.ReadFull(rand.Reader, b)
	require.NoError(t, err)
	return b
}

// writeFile creates name with data; blockSize 0 means the cluster default.
func writeFile(t *testing.T, c *hdfs.Client, name string, data []byte, blockSize int64) {
	t.Helper()
	var (
		w   *hdfs.FileWriter
		err error
	)
	if blockSize == 0 {
		w, err = c.Create(name)
	} else {
		w, err = c.CreateFile(name, 1, blockSize, 0o644)
	}
	require.NoError(t, err)
	_, err = w.Write(data)
	require.NoError(t, err)
	// The NameNode completes a file only once the DataNode's incremental block
	// report for the last block has arrived, which can trail the DataNode's ack
	// by a few milliseconds: colinmarc/hdfs then returns ErrReplicating and
	// documents that Close may be retried, as the Java client does with backoff.
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err = w.Close()
		if !hdfs.IsErrReplicating(err) || attempt == 8 {
			break
		}
		time.Sleep(backoff)
		backoff *= 2
	}
	require.NoError(t, err)
}
