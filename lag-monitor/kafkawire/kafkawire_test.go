package kafkawire

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/compress"
	"github.com/stretchr/testify/require"
)

// batch encodes a magic-2 record batch (CRC left 0: decoding does not check
// it, the broker did) with records at base+i, timestamps base+i*1000 ms.
func batch(base int64, n int, attrs int16, pid int64, baseTS, maxTS int64, codec compress.Compression) []byte {
	var recs []byte
	for i := range n {
		var r []byte
		r = append(r, 0) // attributes
		r = binary.AppendVarint(r, int64(i)*1000)
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, 1)
		r = append(r, 'k')
		r = binary.AppendVarint(r, 1)
		r = append(r, byte('a'+i))
		r = binary.AppendVarint(r, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	if codec != compress.None {
		var buf bytes.Buffer
		w := codec.Codec().NewWriter(&buf)
		w.Write(recs)
		w.Close()
		recs = buf.Bytes()
		attrs |= int16(codec)
	}
	var b []byte
	b = binary.BigEndian.AppendUint64(b, uint64(base))
	b = binary.BigEndian.AppendUint32(b, 0) // length, below
	b = binary.BigEndian.AppendUint32(b, 0) // leader epoch
	b = append(b, 2)
	b = binary.BigEndian.AppendUint32(b, 0) // crc
	b = binary.BigEndian.AppendUint16(b, uint16(attrs))
	b = binary.BigEndian.AppendUint32(b, uint32(n-1))
	b = binary.BigEndian.AppendUint64(b, uint64(baseTS))
	b = binary.BigEndian.AppendUint64(b, uint64(maxTS))
	b = binary.BigEndian.AppendUint64(b, uint64(pid))
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	return b
}

func TestDecodeTimestamps(t *testing.T) {
	const old, appended = 1_000_000, 9_000_000
	for _, codec := range []compress.Compression{compress.None, compress.Lz4, compress.Gzip, compress.Zstd, compress.Snappy} {
		data := append(batch(10, 3, 0, -1, old, old+2000, codec), batch(13, 2, attrLogAppendTime, -1, old, appended, codec)...)
		data = append(data, batch(15, 2, 0, -1, old, old, codec)[:30]...) // partial: cut by max bytes
		bs, err := decodeBatches(data)
		require.NoError(t, err, codec)
		require.Len(t, bs, 2, "the partial batch is dropped")
		require.Equal(t, time.UnixMilli(old+1000), bs[0].Records[1].Time, "CreateTime: base + delta")
		require.False(t, bs[0].Records[1].LogAppendTime)
		require.Equal(t, int64(11), bs[0].Records[1].Offset)
		require.Equal(t, []byte("b"), bs[0].Records[1].Value)
		require.Equal(t, time.UnixMilli(appended), bs[1].Records[1].Time, "LogAppendTime: the batch's max timestamp, whatever the producer stamped")
		require.True(t, bs[1].Records[1].LogAppendTime)
	}
}

func TestVisibleSkipsMarkersAndAborted(t *testing.T) {
	var data []byte
	data = append(data, batch(0, 2, 0, -1, 0, 0, compress.None)...)                            // 0-1 plain
	data = append(data, batch(2, 2, attrTransactional, 7, 0, 0, compress.None)...)             // 2-3 aborted txn of producer 7
	data = append(data, batch(4, 1, attrTransactional|attrControl, 7, 0, 0, compress.None)...) // 4 abort marker
	data = append(data, batch(5, 2, attrTransactional, 8, 0, 0, compress.None)...)             // 5-6 committed txn of 8
	data = append(data, batch(7, 1, attrTransactional|attrControl, 8, 0, 0, compress.None)...) // 7 commit marker
	data = append(data, batch(8, 2, 0, -1, 0, 0, compress.None)...)                            // 8-9, 9 past the LSO
	bs, err := decodeBatches(data)
	require.NoError(t, err)
	p := &Partition{LastStableOffset: 9, Aborted: []Aborted{{ProducerID: 7, FirstOffset: 2}}, Batches: bs}
	recs, next := p.Visible()
	var offs []int64
	for _, r := range recs {
		offs = append(offs, r.Offset)
	}
	require.Equal(t, []int64{0, 1, 5, 6, 8}, offs)
	require.Equal(t, int64(10), next)
}

func TestOldMessageFormatRefused(t *testing.T) {
	b := batch(0, 1, 0, -1, 0, 0, compress.None)
	b[16] = 1 // magic
	_, err := decodeBatches(b)
	require.ErrorContains(t, err, "magic")
}
