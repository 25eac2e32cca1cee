package esclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// BulkOp is a bulk action.
type BulkOp string

const (
	BulkIndex  BulkOp = "index"  // create or replace the document
	BulkCreate BulkOp = "create" // create; fails with 409 when the _id exists
	BulkUpdate BulkOp = "update" // Doc is the update body, e.g. {"doc": {...}}
	BulkDelete BulkOp = "delete" // no Doc
)

// BulkItem is one action of a bulk request.
type BulkItem struct {
	Op    BulkOp // "" means BulkIndex
	Index string // "" means the index given to Bulk
	ID    string // "" lets the server choose (index only)
	// Doc is the source line: json.RawMessage or []byte is sent as is, anything
	// else is marshalled with encoding/json.
	Doc any
}

// BulkItemResult is the outcome of one BulkItem, in request order.
type BulkItemResult struct {
	Op      BulkOp
	Index   string
	ID      string
	Status  int
	Result  string // "created", "updated", "deleted", "noop", "not_found"
	Version int64
	Error   string // "type: reason" when the item failed
}

// Failed reports whether the item failed.
func (r BulkItemResult) Failed() bool { return r.Error != "" || r.Status > 299 }

// BulkResult is the answer of a bulk request.
type BulkResult struct {
	Items []BulkItemResult // one per BulkItem, same order
}

// Failed returns the failed items.
func (r *BulkResult) Failed() []BulkItemResult {
	var out []BulkItemResult
	for _, it := range r.Items {
		if it.Failed() {
			out = append(out, it)
		}
	}
	return out
}

// BulkError is returned by Bulk when some items failed; the others succeeded.
type BulkError struct {
	What   string
	Total  int
	Failed []BulkItemResult
}

func (e *BulkError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d of %d items failed", e.What, len(e.Failed), e.Total)
	for i, it := range e.Failed {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-i)
			break
		}
		fmt.Fprintf(&b, "; %s %s/%s: %d %s", it.Op, it.Index, it.ID, it.Status, it.Error)
	}
	return b.String()
}

// Bulk sends items as one NDJSON bulk request to index (the default for items
// without their own; may be ""). It returns the result of every item, and a
// *BulkError as well when any item failed. Split large batches yourself (a few
// MB per request), or use esutil.BulkIndexer with this Client.
func (c *Client) Bulk(ctx context.Context, index string, items []BulkItem) (*BulkResult, error) {
	what := fmt.Sprintf("bulk of %d items", len(items))
	if index != "" {
		what += " into " + index
	}
	if len(items) == 0 {
		return &BulkResult{}, nil
	}
	body, err := encodeBulk(items)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var answer struct {
		Errors bool `json:"errors"`
		Items  []map[BulkOp]struct {
			Index   string `json:"_index"`
			ID      string `json:"_id"`
			Status  int    `json:"status"`
			Result  string `json:"result"`
			Version int64  `json:"_version"`
			Error   *cause `json:"error"`
		} `json:"items"`
	}
	if err := c.Do(ctx, esapi.BulkRequest{Index: index, Body: bytes.NewReader(body)}, what, &answer); err != nil {
		return nil, err
	}
	if len(answer.Items) != len(items) {
		return nil, fmt.Errorf("%s: the server answered for %d items", what, len(answer.Items))
	}
	res := &BulkResult{Items: make([]BulkItemResult, len(items))}
	for i, m := range answer.Items {
		if len(m) != 1 {
			return nil, fmt.Errorf("%s: item %d: malformed answer with %d actions", what, i, len(m))
		}
		for op, it := range m {
			res.Items[i] = BulkItemResult{Op: op, Index: it.Index, ID: it.ID, Status: it.Status,
				Result: it.Result, Version: it.Version, Error: it.Error.String()}
			if res.Items[i].Failed() && res.Items[i].Error == "" {
				res.Items[i].Error = "no error detail"
			}
		}
	}
	if failed := res.Failed(); len(failed) > 0 {
		return res, &BulkError{What: what, Total: len(items), Failed: failed}
	}
	if answer.Errors {
		return res, fmt.Errorf("%s: the server reported errors but no item failed", what)
	}
	return res, nil
}

func encodeBulk(items []BulkItem) ([]byte, error) {
	var buf bytes.Buffer
	for i, it := range items {
		op := it.Op
		if op == "" {
			op = BulkIndex
		}
		meta := map[string]string{}
		if it.Index != "" {
			meta["_index"] = it.Index
		}
		if it.ID != "" {
			meta["_id"] = it.ID
		}
		switch op {
		case BulkIndex, BulkCreate, BulkUpdate, BulkDelete:
		default:
			return nil, fmt.Errorf("item %d: unknown op %q", i, op)
		}
		if op != BulkIndex && it.ID == "" {
			return nil, fmt.Errorf("item %d: %s needs an ID", i, op)
		}
		line, err := json.Marshal(map[BulkOp]map[string]string{op: meta})
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
		if op == BulkDelete {
			if it.Doc != nil {
				return nil, fmt.Errorf("item %d: delete takes no Doc", i)
			}
			continue
		}
		var doc []byte
		switch d := it.Doc.(type) {
		case nil:
			return nil, fmt.Errorf("item %d: %s needs a Doc", i, op)
		case json.RawMessage:
			doc = d
		case []byte:
			doc = d
		default:
			if doc, err = json.Marshal(d); err != nil {
				return nil, fmt.Errorf("item %d: marshal doc: %w", i, err)
			}
		}
		// Bulk is line-delimited: compact away any newline inside the document.
		if bytes.ContainsAny(doc, "\r\n") {
			var c bytes.Buffer
			if err := json.Compact(&c, doc); err != nil {
				return nil, fmt.Errorf("item %d: doc is not JSON: %w", i, err)
			}
			doc = c.Bytes()
		}
		buf.Write(doc)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}
