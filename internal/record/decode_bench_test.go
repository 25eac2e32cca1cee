package record

import (
	"testing"
)

// BenchmarkDecode: one typical record (see the good fixture).
func BenchmarkDecode(b *testing.B) {
	line := []byte(good)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, _, err := Decode(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendProjection(b *testing.B) {
	rec, _, err := Decode([]byte(good))
	if err != nil {
		b.Fatal(err)
	}
	names := []string{FieldTimestamp, FieldTenant, FieldClientIP, FieldRTTMS}
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = rec.AppendProjection(buf[:0], names)
	}
}

// BenchmarkDecodeManyUnknown: a record with 6000 unknown keys (issue 12) is
// rejected in time linear in its size.
func BenchmarkDecodeManyUnknown(b *testing.B) {
	line := []byte(withUnknown(6000))
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		_, _, _ = Decode(line)
	}
}

// BenchmarkDecodeCanonical: the router's path for a record ingress wrote.
func BenchmarkDecodeCanonical(b *testing.B) {
	rec, _, err := Decode([]byte(good))
	if err != nil {
		b.Fatal(err)
	}
	line := rec.AppendJSON(nil)
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, _, err := DecodeCanonical(line); err != nil {
			b.Fatal(err)
		}
	}
}
