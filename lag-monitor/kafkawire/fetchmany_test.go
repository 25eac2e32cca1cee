package kafkawire

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/stretchr/testify/require"
)

// FetchMany sends one Fetch v4 for every position, grouped by topic, and
// sorts the answer out per partition: records, an error code, an empty
// answer (cut by the size limits), a partition it did not ask for.
func TestFetchMany(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	type asked struct {
		topic              string
		partition          int32
		offset             int64
		partMax            int32
		maxBytes           int32
		isolation, version int
	}
	got := make(chan []asked, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		rd := bufio.NewReader(c)
		var size int32
		if binary.Read(rd, binary.BigEndian, &size) != nil {
			return
		}
		req := make([]byte, size)
		if _, err := io.ReadFull(rd, req); err != nil {
			return
		}
		r := &reader{b: req}
		r.i16() // api key
		version := r.i16()
		corr := r.i32()
		r.str() // client id
		r.i32() // replica
		r.i32() // max wait
		r.i32() // min bytes
		maxBytes := r.i32()
		iso := r.i8()
		var as []asked
		for nt := r.i32(); nt > 0; nt-- {
			topic := r.str()
			for np := r.i32(); np > 0; np-- {
				as = append(as, asked{topic: topic, partition: r.i32(), offset: r.i64(), partMax: r.i32(), maxBytes: maxBytes, isolation: int(iso), version: int(version)})
			}
		}
		got <- as
		part := func(b []byte, id int32, code int16, records []byte) []byte {
			b = binary.BigEndian.AppendUint32(b, uint32(id))
			b = binary.BigEndian.AppendUint16(b, uint16(code))
			b = binary.BigEndian.AppendUint64(b, 9) // high watermark
			b = binary.BigEndian.AppendUint64(b, 8) // last stable
			b = binary.BigEndian.AppendUint32(b, 0) // aborted
			b = binary.BigEndian.AppendUint32(b, uint32(len(records)))
			return append(b, records...)
		}
		var body []byte
		body = binary.BigEndian.AppendUint32(body, 0) // throttle
		body = binary.BigEndian.AppendUint32(body, 2)
		body = appendString(body, "a")
		body = binary.BigEndian.AppendUint32(body, 2)
		body = part(body, 0, 0, batch(5, 2, 0, -1, 1_000_000, 1_001_000, compress.None))
		body = part(body, 1, 1, nil) // OFFSET_OUT_OF_RANGE
		body = appendString(body, "b")
		body = binary.BigEndian.AppendUint32(body, 2)
		body = part(body, 3, 0, nil)                                                     // cut: no batch
		body = part(body, 9, 0, batch(0, 1, 0, -1, 1_000_000, 1_000_000, compress.None)) // not asked
		res := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
		res = binary.BigEndian.AppendUint32(res, uint32(corr))
		_, _ = c.Write(append(res, body...))
	}()

	f := &Fetcher{ClientID: "test", Timeout: 5 * time.Second}
	defer f.Close()
	pos := []FetchPos{
		{TopicPartition{"a", 0}, 5},
		{TopicPartition{"b", 3}, 7},
		{TopicPartition{"a", 1}, 2},
	}
	parts, failed, err := f.FetchMany(context.Background(), ln.Addr().String(), pos, 1000, 5000, true)
	require.NoError(t, err)
	require.Equal(t, []asked{
		{"a", 0, 5, 1000, 5000, 1, 4}, {"a", 1, 2, 1000, 5000, 1, 4}, {"b", 3, 7, 1000, 5000, 1, 4},
	}, <-got, "one request, grouped by topic, READ_COMMITTED")
	require.Len(t, parts, 2)
	require.Len(t, parts[TopicPartition{"a", 0}].Batches, 1)
	require.Equal(t, int64(6), parts[TopicPartition{"a", 0}].Batches[0].Records[1].Offset)
	require.Equal(t, int64(8), parts[TopicPartition{"a", 0}].LastStableOffset)
	require.Empty(t, parts[TopicPartition{"b", 3}].Batches, "cut by the size limits")
	require.Equal(t, map[TopicPartition]error{{"a", 1}: kafka.OffsetOutOfRange}, failed)

	_, _, err = f.FetchMany(context.Background(), ln.Addr().String(), []FetchPos{pos[0], pos[0]}, 1000, 5000, true)
	require.ErrorContains(t, err, "asked twice")
}
