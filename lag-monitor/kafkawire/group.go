package kafkawire

import (
	"errors"
	"fmt"
)

// The consumer protocol (protocol type "consumer") of the classic group
// protocol: what a member sends in JoinGroup (its subscription) and receives
// in SyncGroup (its assignment), both returned as opaque bytes by
// DescribeGroups. Versions 0–3 are what Kafka's own clients (2.x–4.x),
// librdkafka 2.x and franz-go send:
//
//	Subscription v0: version int16, topics [string], user_data bytes
//	             v1: + owned_partitions [topic string, partitions [int32]]
//	             v2: + generation_id int32
//	             v3: + rack_id nullable string
//	Assignment   v0–v3: version int16, assigned_partitions [topic string, partitions [int32]], user_data bytes
//
// Like Kafka's ConsumerProtocol, a version above the highest known is read
// as the highest known (later versions only append fields), and bytes after
// the last known field are ignored. Fields of a later version missing where
// the bytes end are absent (kafka-go labels its version 0 layout version 1);
// bytes that end inside a field are an error.
const maxConsumerProtocolVersion = 3

// Subscription is a member's consumer-protocol subscription.
type Subscription struct {
	Version         int16
	Topics          []string
	UserData        []byte
	OwnedPartitions []TopicPartitions // v1+
	GenerationID    int32             // v2+; -1 when absent
	RackID          string            // v3+; "" when null
}

// Assignment is a member's consumer-protocol assignment.
type Assignment struct {
	Version    int16
	Partitions []TopicPartitions
	UserData   []byte
}

// TopicPartitions is a topic and some of its partitions.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// ErrConsumerProtocol is wrapped by every decoding error of DecodeSubscription
// and DecodeAssignment (a permanent error: the bytes will not change).
var ErrConsumerProtocol = errors.New("malformed consumer protocol data")

// DecodeSubscription decodes a member's metadata from DescribeGroups. Empty
// bytes (a member that has not joined yet) decode to an empty subscription.
func DecodeSubscription(b []byte) (Subscription, error) {
	s := Subscription{GenerationID: -1}
	if len(b) == 0 {
		return s, nil
	}
	r := &reader{b: b}
	s.Version = r.i16()
	if r.err == nil && s.Version < 0 {
		return s, fmt.Errorf("%w: subscription version %d", ErrConsumerProtocol, s.Version)
	}
	v := min(s.Version, maxConsumerProtocolVersion)
	s.Topics = r.strings()
	s.UserData = r.bytes32()
	// A field of a later version that is missing where the bytes end is
	// absent: kafka-go writes version 1 in the version 0 layout.
	if v >= 1 && len(r.b) > 0 {
		s.OwnedPartitions = r.topicPartitions()
	}
	if v >= 2 && len(r.b) > 0 {
		s.GenerationID = r.i32()
	}
	if v >= 3 && len(r.b) > 0 {
		s.RackID = r.str()
	}
	if r.err != nil {
		return Subscription{}, fmt.Errorf("%w: subscription v%d: %w", ErrConsumerProtocol, s.Version, r.err)
	}
	return s, nil
}

// DecodeAssignment decodes a member's assignment from DescribeGroups. Empty
// bytes (a member not yet assigned, during a rebalance) decode to an empty
// assignment.
func DecodeAssignment(b []byte) (Assignment, error) {
	var a Assignment
	if len(b) == 0 {
		return a, nil
	}
	r := &reader{b: b}
	a.Version = r.i16()
	if r.err == nil && a.Version < 0 {
		return a, fmt.Errorf("%w: assignment version %d", ErrConsumerProtocol, a.Version)
	}
	a.Partitions = r.topicPartitions()
	a.UserData = r.bytes32()
	if r.err != nil {
		return Assignment{}, fmt.Errorf("%w: assignment v%d: %w", ErrConsumerProtocol, a.Version, r.err)
	}
	return a, nil
}

// count reads an array length: -1 (null) is 0; a length that cannot fit in
// what is left, each element taking at least min bytes, is an error, so a
// hostile length never allocates.
func (r *reader) count(minSize int) int {
	n := r.i32()
	switch {
	case r.err != nil || n == -1:
		return 0
	case n < 0 || int64(n)*int64(minSize) > int64(len(r.b)):
		r.err = fmt.Errorf("array length %d exceeds the %d bytes left", n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) strings() []string {
	n := r.count(2)
	out := make([]string, 0, n)
	for range n {
		out = append(out, r.str())
	}
	return out
}

// bytes32 reads int32-length bytes; nil for -1.
func (r *reader) bytes32() []byte {
	n := r.i32()
	if r.err != nil || n == -1 {
		return nil
	}
	if n < 0 {
		r.err = fmt.Errorf("bytes length %d", n)
		return nil
	}
	b := r.take(int(n))
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

func (r *reader) topicPartitions() []TopicPartitions {
	n := r.count(6) // topic length + partition count
	out := make([]TopicPartitions, 0, n)
	for range n {
		tp := TopicPartitions{Topic: r.str()}
		np := r.count(4)
		tp.Partitions = make([]int32, 0, np)
		for range np {
			tp.Partitions = append(tp.Partitions, r.i32())
		}
		out = append(out, tp)
	}
	return out
}
