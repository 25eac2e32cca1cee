package kafkawire

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// enc builds consumer-protocol bytes.
type enc []byte

func (e enc) i16(v int16) enc { return binary.BigEndian.AppendUint16(e, uint16(v)) }
func (e enc) i32(v int32) enc { return binary.BigEndian.AppendUint32(e, uint32(v)) }
func (e enc) str(s string) enc {
	return append(e.i16(int16(len(s))), s...)
}
func (e enc) strs(ss ...string) enc {
	e = e.i32(int32(len(ss)))
	for _, s := range ss {
		e = e.str(s)
	}
	return e
}
func (e enc) bytes(b []byte) enc {
	if b == nil {
		return e.i32(-1)
	}
	return append(e.i32(int32(len(b))), b...)
}
func (e enc) tps(tps ...TopicPartitions) enc {
	e = e.i32(int32(len(tps)))
	for _, tp := range tps {
		e = e.str(tp.Topic).i32(int32(len(tp.Partitions)))
		for _, p := range tp.Partitions {
			e = e.i32(p)
		}
	}
	return e
}

func TestDecodeSubscriptionVersions(t *testing.T) {
	owned := []TopicPartitions{{Topic: "a", Partitions: []int32{0, 2}}}
	for _, tc := range []struct {
		name string
		b    []byte
		want Subscription
	}{
		{"empty: not joined yet", nil, Subscription{GenerationID: -1}},
		{"v0 (kafka-go, Kafka < 2.4)", enc{}.i16(0).strs("a", "b").bytes(nil),
			Subscription{Version: 0, Topics: []string{"a", "b"}, GenerationID: -1}},
		{"v1 in the v0 layout (kafka-go)", enc{}.i16(1).strs("a").bytes(nil),
			Subscription{Version: 1, Topics: []string{"a"}, GenerationID: -1}},
		{"v3 ending after the owned partitions", enc{}.i16(3).strs("a").bytes(nil).tps(),
			Subscription{Version: 3, Topics: []string{"a"}, OwnedPartitions: []TopicPartitions{}, GenerationID: -1}},
		{"v1: owned partitions (cooperative rebalancing)", enc{}.i16(1).strs("a").bytes([]byte("u")).tps(owned...),
			Subscription{Version: 1, Topics: []string{"a"}, UserData: []byte("u"), OwnedPartitions: owned, GenerationID: -1}},
		{"v2: generation", enc{}.i16(2).strs("a").bytes(nil).tps(owned...).i32(7),
			Subscription{Version: 2, Topics: []string{"a"}, OwnedPartitions: owned, GenerationID: 7}},
		{"v3: rack (Kafka 3.x/4.x Java, librdkafka 2.x)", enc{}.i16(3).strs("a").bytes(nil).tps().i32(7).str("rack-1"),
			Subscription{Version: 3, Topics: []string{"a"}, OwnedPartitions: []TopicPartitions{}, GenerationID: 7, RackID: "rack-1"}},
		{"v3 with a null rack", enc{}.i16(3).strs("a").bytes(nil).tps().i32(7).i16(-1),
			Subscription{Version: 3, Topics: []string{"a"}, OwnedPartitions: []TopicPartitions{}, GenerationID: 7}},
		{"v9 from a future client: read as v3, the rest ignored", append(enc{}.i16(9).strs("a").bytes(nil).tps().i32(1).str("r"), 1, 2, 3),
			Subscription{Version: 9, Topics: []string{"a"}, OwnedPartitions: []TopicPartitions{}, GenerationID: 1, RackID: "r"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeSubscription(tc.b)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeAssignmentVersions(t *testing.T) {
	parts := []TopicPartitions{{Topic: "a", Partitions: []int32{0, 1}}, {Topic: "b", Partitions: []int32{}}}
	for v := int16(0); v <= 4; v++ {
		got, err := DecodeAssignment(enc{}.i16(v).tps(parts...).bytes([]byte{1}))
		require.NoError(t, err)
		require.Equal(t, Assignment{Version: v, Partitions: parts, UserData: []byte{1}}, got)
	}
	got, err := DecodeAssignment(nil)
	require.NoError(t, err)
	require.Empty(t, got.Partitions)
}

// Hostile bytes: a clear error wrapping ErrConsumerProtocol, never a panic,
// never an allocation sized by a length the bytes cannot hold.
func TestDecodeConsumerProtocolMalformed(t *testing.T) {
	// An array length exactly at the bound (each topic string takes at least
	// 2 bytes: 3 empty strings in 6 bytes) decodes; one more is refused.
	atBound := enc{}.i16(0).i32(3).str("").str("").str("")
	_, err := DecodeSubscription(append(atBound, enc{}.bytes(nil)...))
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"negative version":           enc{}.i16(-1).strs(),
		"truncated version":          {0},
		"truncated topics":           enc{}.i16(0).i32(2).str("a"),
		"topic count over the bound": enc{}.i16(0).i32(4).str("").str("").str(""),
		"huge topic count":           enc{}.i16(0).i32(1 << 30),
		"negative topic count":       enc{}.i16(0).i32(-2),
		"negative user data length":  enc{}.i16(0).strs("a").i32(-5),
		"user data longer than left": enc{}.i16(0).strs("a").i32(100),
		"v1 owned partitions cut":    enc{}.i16(1).strs("a").bytes(nil).i16(0),
		"v1 huge partition count":    enc{}.i16(1).strs("a").bytes(nil).i32(1).str("a").i32(1 << 29),
		"v2 generation cut":          enc{}.i16(2).strs("a").bytes(nil).tps().i16(0),
		"v3 truncated rack":          enc{}.i16(3).strs("a").bytes(nil).tps().i32(1).i16(5),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeSubscription(b)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrConsumerProtocol), "%v", err)
		})
	}
	for name, b := range map[string][]byte{
		"negative version":        enc{}.i16(-3),
		"huge topic count":        enc{}.i16(0).i32(1 << 30),
		"partition count too big": enc{}.i16(0).i32(1).str("a").i32(3).i32(0).i32(1),
		"missing user data":       enc{}.i16(0).tps(),
	} {
		t.Run("assignment "+name, func(t *testing.T) {
			_, err := DecodeAssignment(b)
			require.ErrorIs(t, err, ErrConsumerProtocol)
		})
	}
}

func FuzzDecodeConsumerProtocol(f *testing.F) {
	f.Add([]byte(enc{}.i16(3).strs("a").bytes(nil).tps(TopicPartitions{"a", []int32{1}}).i32(7).str("r")))
	f.Add([]byte(enc{}.i16(0).tps(TopicPartitions{"a", []int32{1}}).bytes(nil)))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeSubscription(b)
		_, _ = DecodeAssignment(b)
	})
}
