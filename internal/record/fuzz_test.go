package record

import (
	"encoding/json"
	"testing"
)

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to a
// canonical form that decodes to the same record.
//
//	go test ./internal/record -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		good, ``, `{}`, `[]`, `null`, `{"status":1e400}`, `{"tenant":"\ud800"}`,
		`{"timestamp":"2026-11-21T00:00:00Z","tenant":"t","method":"GET","status":204,"duration_ms":0}`,
		with("rtt_ms", `0.000001`), with("client_ip", `"::ffff:1.2.3.4"`), "{\"path\":\"/\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, _, err := Decode(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if verr := rec.Validate(); verr != nil {
			t.Fatalf("decoded record fails Validate: %v", verr)
		}
		out, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("marshal accepted record: %v", err)
		}
		again, unknown, err := Decode(out)
		if err != nil || len(unknown) != 0 {
			t.Fatalf("canonical form %s does not decode: %v (unknown %v)", out, err, unknown)
		}
		out2, _ := json.Marshal(again)
		if string(out) != string(out2) {
			t.Fatalf("round trip changed the record:\n%s\n%s", out, out2)
		}
	})
}
