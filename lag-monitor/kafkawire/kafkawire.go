// Package kafkawire reads Kafka record batches at the wire level, for the one
// thing the lag monitor needs and kafka-go does not expose: the timestamp of a
// record as the broker defines it.
//
// kafka-go decodes every record's time as the batch's base timestamp plus the
// record's delta and discards the batch attributes and max timestamp. For a
// topic with message.timestamp.type=LogAppendTime the broker keeps the
// producer's base timestamp and deltas and only sets the batch's
// timestamp-type bit and max timestamp, so the record's timestamp is the max
// timestamp of its batch (what the Java consumer reports). This package sends
// Fetch v4 requests itself (READ_COMMITTED, so the answer stops at the last
// stable offset and lists aborted transactions), decodes magic-2 record
// batches with any codec kafka-go knows, and returns each record's timestamp
// per its batch's timestamp type.
package kafkawire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// Record is one data record.
type Record struct {
	Offset        int64
	Time          time.Time // CreateTime, or the batch's LogAppendTime
	LogAppendTime bool      // Time is the broker's append time
	Key, Value    []byte    // nil when absent (a tombstone has a nil Value)
}

// Batch is one decoded record batch.
type Batch struct {
	BaseOffset, LastOffset int64
	ProducerID             int64
	Transactional, Control bool
	LogAppendTime          bool
	Records                []Record // for a control batch: the control records (key = version, type)
}

// Aborted is a transaction aborted by producer ProducerID, starting at FirstOffset.
type Aborted struct {
	ProducerID, FirstOffset int64
}

// Partition is the answer of a fetch for one partition.
type Partition struct {
	HighWatermark, LastStableOffset int64
	Aborted                         []Aborted
	Batches                         []Batch
}

// Fetcher sends fetch and metadata requests over one connection per
// broker. It is safe for concurrent use; requests to one broker are serialised.
type Fetcher struct {
	ClientID string
	Timeout  time.Duration // per request; default 10s

	mu    sync.Mutex
	conns map[string]*brokerConn
}

type brokerConn struct {
	mu   sync.Mutex
	conn net.Conn
	rd   *bufio.Reader
	corr int32
}

// Close closes every connection.
func (f *Fetcher) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for addr, bc := range f.conns {
		bc.mu.Lock()
		if bc.conn != nil {
			errs = append(errs, bc.conn.Close())
			bc.conn = nil
		}
		bc.mu.Unlock()
		delete(f.conns, addr)
	}
	return errors.Join(errs...)
}

func (f *Fetcher) broker(addr string) *brokerConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil {
		f.conns = map[string]*brokerConn{}
	}
	bc, ok := f.conns[addr]
	if !ok {
		bc = &brokerConn{}
		f.conns[addr] = bc
	}
	return bc
}

// Fetch reads up to maxBytes of topic/partition from offset at leader (host:port),
// isolation READ_COMMITTED. A partition-level Kafka error is returned as a
// kafka.Error (test it with errors.Is, e.g. kafka.OffsetOutOfRange).
func (f *Fetcher) Fetch(ctx context.Context, leader, topic string, partition int, offset int64, maxBytes int32) (*Partition, error) {
	return f.FetchIsolation(ctx, leader, topic, partition, offset, maxBytes, true)
}

// FetchIsolation is Fetch with a choice of isolation: READ_UNCOMMITTED
// (readCommitted false) also returns the records past the last stable
// offset, those of open transactions.
func (f *Fetcher) FetchIsolation(ctx context.Context, leader, topic string, partition int, offset int64, maxBytes int32, readCommitted bool) (*Partition, error) {
	body, err := f.call(ctx, leader, 1, 4, fetchBody(topic, int32(partition), offset, maxBytes, readCommitted))
	if err != nil {
		return nil, fmt.Errorf("kafkawire: fetch %s/%d@%d from %s: %w", topic, partition, offset, leader, err)
	}
	p, err := parseFetchResponse(body, topic, int32(partition))
	if err != nil {
		return nil, fmt.Errorf("kafkawire: fetch %s/%d@%d: %w", topic, partition, offset, err)
	}
	return p, nil
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int
}

// FetchPos is one partition to read from Offset.
type FetchPos struct {
	TopicPartition
	Offset int64
}

// FetchMany reads many partitions led by addr in one Fetch v4 request, each
// from its offset, up to partMaxBytes each and maxBytes in all. Kafka keeps
// to these limits except for the first partition with records, which gets
// at least its first batch whole; another partition whose first batch is
// larger comes back without a complete batch (no Batches), and partitions
// past maxBytes come back empty: the caller reads those again alone. A
// partition the broker answered with an error code, or whose records do not
// decode, is in failed instead; one it did not answer is in neither. Each
// partition may appear once in pos.
func (f *Fetcher) FetchMany(ctx context.Context, addr string, pos []FetchPos, partMaxBytes, maxBytes int32, readCommitted bool) (parts map[TopicPartition]*Partition, failed map[TopicPartition]error, err error) {
	if len(pos) == 0 {
		return map[TopicPartition]*Partition{}, map[TopicPartition]error{}, nil
	}
	var topics []string
	byTopic := map[string][]FetchPos{}
	seen := make(map[TopicPartition]bool, len(pos))
	for _, p := range pos {
		if seen[p.TopicPartition] {
			return nil, nil, fmt.Errorf("kafkawire: fetch from %s: %s/%d asked twice", addr, p.Topic, p.Partition)
		}
		seen[p.TopicPartition] = true
		if _, ok := byTopic[p.Topic]; !ok {
			topics = append(topics, p.Topic)
		}
		byTopic[p.Topic] = append(byTopic[p.Topic], p)
	}
	b := fetchHeader(maxBytes, readCommitted)
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = appendString(b, t)
		b = binary.BigEndian.AppendUint32(b, uint32(len(byTopic[t])))
		for _, p := range byTopic[t] {
			b = binary.BigEndian.AppendUint32(b, uint32(p.Partition))
			b = binary.BigEndian.AppendUint64(b, uint64(p.Offset))
			b = binary.BigEndian.AppendUint32(b, uint32(partMaxBytes))
		}
	}
	body, err := f.call(ctx, addr, 1, 4, b)
	if err != nil {
		return nil, nil, fmt.Errorf("kafkawire: fetch %d partitions from %s: %w", len(pos), addr, err)
	}
	parts, failed = map[TopicPartition]*Partition{}, map[TopicPartition]error{}
	err = parseFetch(body, func(tp TopicPartition, p *Partition, err error) bool {
		if !seen[tp] {
			return true
		}
		if err != nil {
			failed[tp] = err
		} else {
			parts[tp] = p
		}
		return true
	})
	if err != nil {
		return nil, nil, fmt.Errorf("kafkawire: fetch %d partitions from %s: %w", len(pos), addr, err)
	}
	return parts, failed, nil
}

// call sends one request (header v1) to addr and returns the response body
// after the correlation id.
func (f *Fetcher) call(ctx context.Context, addr string, apiKey, version int16, body []byte) ([]byte, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	bc := f.broker(addr)
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if bc.conn == nil {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		bc.conn, bc.rd = c, bufio.NewReaderSize(c, 64<<10)
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = bc.conn.SetDeadline(deadline)
	bc.corr++
	var req []byte
	req = binary.BigEndian.AppendUint32(req, 0) // size, filled below
	req = binary.BigEndian.AppendUint16(req, uint16(apiKey))
	req = binary.BigEndian.AppendUint16(req, uint16(version))
	req = binary.BigEndian.AppendUint32(req, uint32(bc.corr))
	req = appendString(req, f.ClientID)
	req = append(req, body...)
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	res, err := roundTrip(bc.conn, bc.rd, req, bc.corr)
	if err != nil {
		bc.conn.Close() // the stream may be out of step: start over next time
		bc.conn = nil
		return nil, err
	}
	return res, nil
}

func roundTrip(w io.Writer, r io.Reader, req []byte, corr int32) ([]byte, error) {
	if _, err := w.Write(req); err != nil {
		return nil, err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr[:4]))
	if got := int32(binary.BigEndian.Uint32(hdr[4:])); got != corr {
		return nil, fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	if size < 4 || size > 256<<20 {
		return nil, fmt.Errorf("response size %d out of range", size)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// fetchBody encodes a Fetch v4 request body for one partition.
func fetchBody(topic string, partition int32, offset int64, maxBytes int32, readCommitted bool) []byte {
	b := fetchHeader(maxBytes, readCommitted)
	b = binary.BigEndian.AppendUint32(b, 1) // one topic
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, 1) // one partition
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes))
	return b
}

// fetchHeader encodes the fields of a Fetch v4 request before its topics.
func fetchHeader(maxBytes int32, readCommitted bool) []byte {
	iso := byte(0)
	if readCommitted {
		iso = 1
	}
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)       // replica id -1
	b = binary.BigEndian.AppendUint32(b, 0)                // max wait ms: answer at once
	b = binary.BigEndian.AppendUint32(b, 0)                // min bytes
	b = binary.BigEndian.AppendUint32(b, uint32(maxBytes)) // max bytes
	b = append(b, iso)                                     // isolation: 1 READ_COMMITTED, 0 READ_UNCOMMITTED
	return b
}

// TopicMeta is the metadata of one existing topic. Err is set when the
// broker answered the topic with an error other than "unknown topic" (say,
// LEADER_NOT_AVAILABLE): it exists, but its partitions are not known now.
type TopicMeta struct {
	Name       string
	Internal   bool
	Partitions []PartitionMeta
	Err        error
}

// PartitionMeta is one partition and the address of its leader ("" when
// it has none).
type PartitionMeta struct {
	ID     int
	Leader string
}

// Metadata asks the broker at addr for the metadata of topics, never
// creating them (Metadata v4, allow_auto_topic_creation=false) and never
// answering from a cache: a deleted topic is absent from the answer at once.
// Topics the broker does not know are left out; topics it answered with
// another error are returned with Err set.
func (f *Fetcher) Metadata(ctx context.Context, addr string, topics []string) (map[string]TopicMeta, error) {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = appendString(b, t)
	}
	b = append(b, 0) // allow_auto_topic_creation: false
	body, err := f.call(ctx, addr, 3, 4, b)
	if err != nil {
		return nil, fmt.Errorf("kafkawire: metadata from %s: %w", addr, err)
	}
	r := &reader{b: body}
	r.i32() // throttle
	brokers := map[int32]string{}
	for n := r.i32(); n > 0 && r.err == nil; n-- {
		id := r.i32()
		host := r.str()
		port := r.i32()
		r.str() // rack
		brokers[id] = net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	r.str() // cluster id
	r.i32() // controller id
	out := map[string]TopicMeta{}
	for n := r.i32(); n > 0 && r.err == nil; n-- {
		code := r.i16()
		tm := TopicMeta{Name: r.str(), Internal: r.i8() != 0}
		for np := r.i32(); np > 0 && r.err == nil; np-- {
			r.i16() // partition error: a partition without a leader is still a partition
			id := r.i32()
			leader := r.i32()
			for k := r.i32(); k > 0 && r.err == nil; k-- {
				r.i32() // replicas
			}
			for k := r.i32(); k > 0 && r.err == nil; k-- {
				r.i32() // isr
			}
			tm.Partitions = append(tm.Partitions, PartitionMeta{ID: int(id), Leader: brokers[leader]})
		}
		switch {
		case code == 0 && len(tm.Partitions) > 0:
			slices.SortFunc(tm.Partitions, func(a, b PartitionMeta) int { return a.ID - b.ID })
			out[tm.Name] = tm
		case code != 0 && kafka.Error(code) != kafka.UnknownTopicOrPartition:
			tm.Partitions, tm.Err = nil, kafka.Error(code)
			out[tm.Name] = tm
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("kafkawire: metadata from %s: decode: %w", addr, r.err)
	}
	return out, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// reader decodes big-endian Kafka primitives; the first error sticks.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("truncated")

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) i8() int8 {
	if b := r.take(1); b != nil {
		return int8(b[0])
	}
	return 0
}

func (r *reader) i16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) i32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) i64() int64 {
	if b := r.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (r *reader) str() string {
	n := r.i16()
	if n < 0 {
		return ""
	}
	return string(r.take(int(n)))
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytesVar reads a varint-length byte string; nil for length -1.
func (r *reader) bytesVar() []byte {
	n := r.varint()
	if n < 0 {
		return nil
	}
	b := r.take(int(n))
	if b == nil {
		return nil
	}
	return bytes.Clone(b)
}

func parseFetchResponse(body []byte, topic string, partition int32) (*Partition, error) {
	var (
		out   *Partition
		found error = errors.New("the answer has no such partition")
	)
	err := parseFetch(body, func(tp TopicPartition, p *Partition, err error) bool {
		if tp.Topic != topic || tp.Partition != int(partition) {
			return true
		}
		out, found = p, err
		return false
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, found
	}
	return out, nil
}

// parseFetch decodes a Fetch v4 answer and calls each with every partition:
// its records decoded, or the partition's error (its Kafka error code, or
// why its records do not decode); each returns false to stop. The error is
// the answer's own: it could not be decoded.
func parseFetch(body []byte, each func(TopicPartition, *Partition, error) bool) error {
	r := &reader{b: body}
	r.i32() // throttle
	for nt := r.i32(); nt > 0 && r.err == nil; nt-- {
		name := r.str()
		for np := r.i32(); np > 0 && r.err == nil; np-- {
			p := &Partition{}
			id := r.i32()
			code := r.i16()
			p.HighWatermark = r.i64()
			p.LastStableOffset = r.i64()
			for na := r.i32(); na > 0 && r.err == nil; na-- {
				p.Aborted = append(p.Aborted, Aborted{ProducerID: r.i64(), FirstOffset: r.i64()})
			}
			n := r.i32()
			var records []byte
			if n > 0 {
				records = r.take(int(n))
			}
			if r.err != nil {
				return fmt.Errorf("decode response: %w", r.err)
			}
			tp := TopicPartition{name, int(id)}
			var err error
			if code != 0 {
				p, err = nil, kafka.Error(code)
			} else if p.Batches, err = decodeBatches(records); err != nil {
				p = nil
			}
			if !each(tp, p, err) {
				return nil
			}
		}
	}
	if r.err != nil {
		return fmt.Errorf("decode response: %w", r.err)
	}
	return nil
}

// decodeBatches decodes the record batches of a fetch answer. A partial
// batch at the end (the broker cuts at max bytes) is dropped.
func decodeBatches(b []byte) ([]Batch, error) {
	var out []Batch
	for len(b) >= 12 {
		length := int32(binary.BigEndian.Uint32(b[8:12]))
		if length < 0 || int(length) > len(b)-12 {
			break // partial
		}
		batch, err := decodeBatch(b[:12+int(length)])
		if err != nil {
			return nil, err
		}
		out = append(out, batch)
		b = b[12+int(length):]
	}
	return out, nil
}

const (
	attrCompression   = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

func decodeBatch(b []byte) (Batch, error) {
	r := &reader{b: b}
	base := r.i64()
	r.i32() // length
	r.i32() // partition leader epoch
	if magic := r.i8(); magic != 2 {
		return Batch{}, fmt.Errorf("batch at %d: message format (magic) %d is not supported", base, magic)
	}
	r.i32() // crc: the broker checked it on append
	attrs := r.i16()
	lastDelta := r.i32()
	baseTS := r.i64()
	maxTS := r.i64()
	pid := r.i64()
	r.i16() // producer epoch
	r.i32() // base sequence
	count := r.i32()
	if r.err != nil {
		return Batch{}, fmt.Errorf("batch at %d: %w", base, r.err)
	}
	batch := Batch{
		BaseOffset:    base,
		LastOffset:    base + int64(lastDelta),
		ProducerID:    pid,
		Transactional: attrs&attrTransactional != 0,
		Control:       attrs&attrControl != 0,
		LogAppendTime: attrs&attrLogAppendTime != 0,
	}
	payload := r.b
	if c := compress.Compression(attrs & attrCompression); c != compress.None {
		codec := c.Codec()
		if codec == nil {
			return Batch{}, fmt.Errorf("batch at %d: unknown compression %d", base, c)
		}
		zr := codec.NewReader(bytes.NewReader(payload))
		plain, err := io.ReadAll(zr)
		zr.Close()
		if err != nil {
			return Batch{}, fmt.Errorf("batch at %d: decompress %s: %w", base, c, err)
		}
		payload = plain
	}
	rr := &reader{b: payload}
	batch.Records = make([]Record, 0, max(count, 0))
	for i := int32(0); i < count; i++ {
		rr.varint() // record length
		rr.i8()     // record attributes
		tsDelta := rr.varint()
		offDelta := rr.varint()
		rec := Record{Offset: base + offDelta, LogAppendTime: batch.LogAppendTime}
		rec.Key = rr.bytesVar()
		rec.Value = rr.bytesVar()
		for nh := rr.varint(); nh > 0 && rr.err == nil; nh-- {
			rr.bytesVar()
			rr.bytesVar()
		}
		ts := baseTS + tsDelta
		if batch.LogAppendTime {
			ts = maxTS
		}
		rec.Time = time.UnixMilli(ts)
		if rr.err != nil {
			return Batch{}, fmt.Errorf("batch at %d: record %d: %w", base, i, rr.err)
		}
		batch.Records = append(batch.Records, rec)
	}
	return batch, nil
}

// Visible returns the data records of p a READ_COMMITTED consumer sees: no
// control records, no records of aborted transactions, none at or past the
// last stable offset, in offset order. It also returns the offset after the
// last batch in the answer (where to continue reading).
func (p *Partition) Visible() (recs []Record, next int64) {
	aborted := slices.Clone(p.Aborted)
	slices.SortFunc(aborted, func(a, b Aborted) int { return cmpInt64(a.FirstOffset, b.FirstOffset) })
	open := map[int64]bool{} // producers inside an aborted transaction
	next = -1
	for _, b := range p.Batches {
		next = b.LastOffset + 1
		for len(aborted) > 0 && aborted[0].FirstOffset <= b.LastOffset {
			open[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		if b.Control {
			delete(open, b.ProducerID) // the marker ends the transaction
			continue
		}
		if b.Transactional && open[b.ProducerID] {
			continue
		}
		for _, rec := range b.Records {
			if rec.Offset < p.LastStableOffset {
				recs = append(recs, rec)
			}
		}
	}
	return recs, next
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Special timestamps of ListOffsets.
const (
	Earliest int64 = -2 // the log start offset
	Latest   int64 = -1 // the high watermark (READ_UNCOMMITTED) or last stable offset (READ_COMMITTED)
)

// ListOffsets asks the leader at addr for one offset (Earliest or Latest)
// of each of topic's partitions, uncached (ListOffsets v2). readCommitted
// makes Latest the last stable offset. A partition the broker answered with
// an error code is in failed (a kafka.Error) instead; a partition it did not
// answer at all is in neither: the caller must treat both as unread.
func (f *Fetcher) ListOffsets(ctx context.Context, addr, topic string, partitions []int, which int64, readCommitted bool) (offsets map[int]int64, failed map[int]error, err error) {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica id -1
	iso := byte(0)
	if readCommitted {
		iso = 1
	}
	b = append(b, iso)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = appendString(b, topic)
	b = binary.BigEndian.AppendUint32(b, uint32(len(partitions)))
	for _, p := range partitions {
		b = binary.BigEndian.AppendUint32(b, uint32(p))
		b = binary.BigEndian.AppendUint64(b, uint64(which))
	}
	body, err := f.call(ctx, addr, 2, 2, b)
	if err != nil {
		return nil, nil, fmt.Errorf("kafkawire: list offsets of %s from %s: %w", topic, addr, err)
	}
	r := &reader{b: body}
	r.i32() // throttle
	out := map[int]int64{}
	failed = map[int]error{}
	for nt := r.i32(); nt > 0 && r.err == nil; nt-- {
		name := r.str()
		for np := r.i32(); np > 0 && r.err == nil; np-- {
			id := r.i32()
			code := r.i16()
			r.i64() // timestamp
			off := r.i64()
			switch {
			case name != topic:
			case code != 0:
				failed[int(id)] = kafka.Error(code)
			default:
				out[int(id)] = off
			}
		}
	}
	if r.err != nil {
		return nil, nil, fmt.Errorf("kafkawire: list offsets of %s: decode: %w", topic, r.err)
	}
	return out, failed, nil
}
