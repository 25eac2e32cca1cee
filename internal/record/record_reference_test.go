package record

import (
	"bytes"
	"encoding/json"
	"slices"
)

// decodeReference is the original Decode, built on encoding/json's map
// decoding: slow, obviously right. FuzzDecodeMatchesReference checks that
// Decode behaves exactly like it.
func decodeReference(data []byte) (Record, []string, error) {
	var rec Record
	var obj map[string]json.RawMessage
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] != '{' && json.Valid(trimmed) {
		return rec, nil, invalid(Problem{Code: CodeNotObject, Message: "a record must be a JSON object"})
	}
	if err := json.Unmarshal(trimmed, &obj); err != nil || obj == nil {
		return rec, nil, invalid(Problem{Code: CodeMalformedJSON, Message: "not valid JSON"})
	}
	d := decoder{rec: &rec}
	var unknown []string
	for key, raw := range obj {
		if i, known := fieldIndex[key]; known {
			d.field(i, raw, -1)
		} else {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > MaxUnknownFields {
		d.problems = append(d.problems, tooManyFields())
	}
	d.missing()
	d.problems = append(d.problems, rec.check(d.bad, false)...)
	sortProblems(d.problems)
	slices.Sort(unknown)
	if len(d.problems) > 0 {
		return rec, unknown, &InvalidError{Problems: d.problems}
	}
	return rec, unknown, nil
}
