package esclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Config describes how to reach a cluster. Only URLs is required.
type Config struct {
	// URLs of the cluster's HTTP endpoints, e.g. http://127.0.0.1:19200.
	URLs []string
	// Username and Password for HTTP basic auth; both or neither.
	Username, Password string
	// APIKey is the base64 "id:key" of an Elasticsearch API key (not with Username).
	APIKey string
	// CACert is a PEM bundle trusted for https URLs (default: the system pool).
	CACert []byte
	// Header is added to every request.
	Header http.Header
	// MaxRetries per request on network errors and 502/503/504 (0: the transport's
	// default of 3; negative: no retries).
	MaxRetries int
	// Transport replaces the HTTP round tripper (tests, instrumentation).
	Transport http.RoundTripper
}

// Validate reports the first problem of the configuration.
func (cfg Config) Validate() error {
	if len(cfg.URLs) == 0 {
		return errors.New("esclient: no URLs")
	}
	for _, s := range cfg.URLs {
		if _, err := parseURL(s); err != nil {
			return err
		}
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return errors.New("esclient: Username and Password go together")
	}
	if cfg.APIKey != "" && cfg.Username != "" {
		return errors.New("esclient: set either APIKey or Username/Password, not both")
	}
	return nil
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("esclient: URL %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("esclient: URL %q: want http(s)://host:port", s)
	}
	return u, nil
}

// Client runs requests against Elasticsearch 8 or OpenSearch 2.x. It is safe for
// concurrent use and satisfies esapi.Transport.
type Client struct {
	tp *elastictransport.Client
}

var _ esapi.Transport = (*Client)(nil)

// New builds a Client. It does not contact the cluster (see Flavor).
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	urls := make([]*url.URL, 0, len(cfg.URLs))
	for _, s := range cfg.URLs {
		u, _ := parseURL(s) // validated above
		urls = append(urls, u)
	}
	opts := []elastictransport.Option{
		elastictransport.WithURLs(urls...),
		elastictransport.WithUserAgent("hourglass-esclient (go-elasticsearch/" + esapi.Version + ")"),
	}
	if cfg.Username != "" {
		opts = append(opts, elastictransport.WithBasicAuth(cfg.Username, cfg.Password))
	}
	if cfg.APIKey != "" {
		opts = append(opts, elastictransport.WithAPIKey(cfg.APIKey))
	}
	if cfg.CACert != nil {
		opts = append(opts, elastictransport.WithCACert(cfg.CACert))
	}
	if cfg.Header != nil {
		opts = append(opts, elastictransport.WithHeader(cfg.Header.Clone()))
	}
	switch {
	case cfg.MaxRetries < 0:
		opts = append(opts, elastictransport.WithDisableRetry())
	case cfg.MaxRetries > 0:
		opts = append(opts, elastictransport.WithMaxRetries(cfg.MaxRetries))
	}
	if cfg.Transport != nil {
		opts = append(opts, elastictransport.WithTransport(cfg.Transport))
	}
	tp, err := elastictransport.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("esclient: build transport: %w", err)
	}
	return &Client{tp: tp}, nil
}

// Perform sends an HTTP request to one of the cluster's URLs. It implements
// esapi.Transport; it does no product check.
func (c *Client) Perform(req *http.Request) (*http.Response, error) {
	return c.tp.Perform(req)
}

// Close releases the transport's idle connections; later requests fail.
func (c *Client) Close(ctx context.Context) error {
	return c.tp.Close(ctx)
}

// Do runs req, turns a failure into an error saying what was being done (see
// Check), decodes a 2xx JSON answer into out unless out is nil, and closes the body.
func (c *Client) Do(ctx context.Context, req esapi.Request, what string, out any) error {
	res, err := req.Do(ctx, c)
	if err := Check(res, err, what); err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, res.Body) // let the connection be reused
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", what, err)
	}
	return nil
}

// Flavor names the engine behind a cluster.
type Flavor string

const (
	Elasticsearch Flavor = "elasticsearch"
	OpenSearch    Flavor = "opensearch"
)

// Info is what a cluster says about itself at GET /.
type Info struct {
	Flavor      Flavor
	Version     string // e.g. "8.15.0" or "2.19.1"
	ClusterName string
}

// Flavor asks the cluster (GET /) which engine and version it runs. It fails for
// a server that is neither Elasticsearch nor OpenSearch.
func (c *Client) Flavor(ctx context.Context) (Info, error) {
	const what = "esclient: identify the cluster (GET /)"
	res, err := esapi.InfoRequest{}.Do(ctx, c)
	if err := Check(res, err, what); err != nil {
		return Info{}, err
	}
	defer res.Body.Close()
	var body struct {
		ClusterName string `json:"cluster_name"`
		Tagline     string `json:"tagline"`
		Version     struct {
			Number       string `json:"number"`
			Distribution string `json:"distribution"`
		} `json:"version"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return Info{}, fmt.Errorf("%s: decode answer: %w", what, err)
	}
	info := Info{Version: body.Version.Number, ClusterName: body.ClusterName}
	switch {
	case body.Version.Distribution == "opensearch":
		info.Flavor = OpenSearch
	case body.Version.Distribution == "" &&
		(res.Header.Get("X-Elastic-Product") == "Elasticsearch" || body.Tagline == "You Know, for Search"):
		info.Flavor = Elasticsearch
	default:
		return Info{}, fmt.Errorf("%s: unknown server (distribution %q, tagline %q)",
			what, body.Version.Distribution, body.Tagline)
	}
	if info.Version == "" {
		return Info{}, fmt.Errorf("%s: %s without a version number", what, info.Flavor)
	}
	return info, nil
}

// Major is the major version number, 0 when it cannot be read.
func (i Info) Major() int {
	major, _, _ := strings.Cut(i.Version, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	return n
}
