package record

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// eachMember calls fn with the key and the position of the raw value
// (data[start:end]) of every member of a JSON object, in order. data must be
// a valid JSON object (json.Valid and starting with '{'): the scanner relies
// on that and checks nothing itself; utf8OK says all of data is UTF-8. Keys are unescaped exactly as
// encoding/json unescapes them; a key without escapes is a slice of data
// (valid only during the call), so looking it up in a map costs no
// allocation.
func eachMember(data []byte, utf8OK bool, fn func(key []byte, start, end int)) {
	i := skipSpace(data, 1)
	for i < len(data) && data[i] != '}' {
		keyEnd, escaped := stringEnd(data, i)
		key := data[i : keyEnd+1] // with quotes
		i = skipSpace(data, keyEnd+1)
		i = skipSpace(data, i+1) // the ':'
		valueEnd := valueEnd(data, i)
		fn(keyBytes(key, escaped, utf8OK), i, valueEnd)
		i = skipSpace(data, valueEnd)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
}

// keyBytes turns a quoted key into its string value; utf8OK: the key is
// known to be UTF-8.
func keyBytes(quoted []byte, escaped, utf8OK bool) []byte {
	if !escaped && (utf8OK || utf8.Valid(quoted)) {
		return quoted[1 : len(quoted)-1]
	}
	var s string
	_ = json.Unmarshal(quoted, &s) // valid JSON string: cannot fail
	return []byte(s)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the closing quote of the string starting at
// data[i] == '"', and whether it holds escapes.
func stringEnd(data []byte, i int) (int, bool) {
	// Most strings hold no escape: two vectorised searches find their end.
	if q := bytes.IndexByte(data[i+1:], '"'); q >= 0 && bytes.IndexByte(data[i+1:i+1+q], '\\') < 0 {
		return i + 1 + q, false
	}
	escaped := false
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j, escaped
		}
	}
	return len(data) - 1, escaped
}

// valueEnd returns the index just past the value starting at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		end, _ := stringEnd(data, i)
		return end + 1
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j, _ = stringEnd(data, j)
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(data)
	default: // number, true, false, null
		j := i
		for j < len(data) && data[j] != ',' && data[j] != '}' && data[j] != ']' &&
			data[j] != ' ' && data[j] != '\t' && data[j] != '\n' && data[j] != '\r' {
			j++
		}
		return j
	}
}
