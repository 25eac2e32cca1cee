package record

import (
	"encoding/json"
	"errors"
	"slices"
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

// FuzzDecodeMatchesReference: the scanner-based Decode gives the same record,
// unknown keys and problems (fields and codes) as the map-based reference.
//
//	go test ./internal/record -run '^$' -fuzz FuzzDecodeMatchesReference -fuzztime 60s
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, seed := range []string{
		good, ``, `{}`, `[]`, `null`, ` {"a" : [1,{"b":"}"}] , "status" : 200 } `, `{"tenant":"a","tenant":7}`,
		`{"tim\u0065stamp":"2026-11-21T00:00:00Z","timestamp":1}`, `{"user_agent":"a\"b\\c","x\u00e9":1}`,
		with("rtt_ms", `0.000001`), "{\"path\":\"/\xff\"}", "{\"\xff\":1}", `{"status":200,}`, `{"a":1}x`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, unknown, err := Decode(data)
		wrec, wunknown, werr := decodeReference(data)
		if (err == nil) != (werr == nil) {
			t.Fatalf("error mismatch on %q: %v vs reference %v", data, err, werr)
		}
		if err != nil {
			if codes(err) != codes(werr) {
				t.Fatalf("problems differ on %q:\n%s\nreference:\n%s", data, codes(err), codes(werr))
			}
			return
		}
		a, _ := json.Marshal(rec)
		b, _ := json.Marshal(wrec)
		if string(a) != string(b) || !slices.Equal(unknown, wunknown) {
			t.Fatalf("decode differs on %q:\n%s %v\nreference:\n%s %v", data, a, unknown, b, wunknown)
		}
	})
}

func codes(err error) string {
	var inv *InvalidError
	if !errors.As(err, &inv) {
		return err.Error()
	}
	s := ""
	for _, p := range inv.Problems {
		s += p.Field + ":" + string(p.Code) + ";"
	}
	return s
}
