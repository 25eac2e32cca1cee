package esclient

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Raw is an esapi.Request for endpoints esapi does not cover (OpenSearch's
// ISM plugin, for one); it runs through the same transport as every other
// request, so Check and Do treat its answers alike.
type Raw struct {
	Method string
	Path   string // absolute, e.g. /_plugins/_ism/policies/p
	Params url.Values
	Body   []byte // JSON; nil for none
}

// Do sends the request over t.
func (r Raw) Do(ctx context.Context, t esapi.Transport) (*esapi.Response, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	u := r.Path
	if len(r.Params) > 0 {
		u += "?" + r.Params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u, body)
	if err != nil {
		return nil, err
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := t.Perform(req)
	if err != nil {
		return nil, err
	}
	return &esapi.Response{StatusCode: res.StatusCode, Body: res.Body, Header: res.Header}, nil
}
