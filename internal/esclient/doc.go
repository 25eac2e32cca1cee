// Package esclient is the one way Hourglass code talks to a search cluster:
// Elasticsearch 8 or OpenSearch 2.x, through github.com/elastic/go-elasticsearch/v8.
//
// # The contract
//
// New builds a *Client on an elastic-transport-go transport (retries, basic or
// API-key auth, connection pool). A *Client satisfies esapi.Transport, so every
// request of the esapi package runs on it:
//
//	res, err := esapi.IndicesCreateRequest{Index: name, Body: body}.Do(ctx, c)
//	if err := esclient.Check(res, err, "create index "+name); err != nil { ... }
//	defer res.Body.Close()
//
// or, decoding the answer and closing the body in one step:
//
//	var out struct{ Count int64 `json:"count"` }
//	err := c.Do(ctx, esapi.CountRequest{Index: []string{name}}, "count "+name, &out)
//
// esutil.BulkIndexer works too: set BulkIndexerConfig.Client to the *Client.
// Client.Bulk sends one NDJSON bulk request and reports every failed item.
//
// Why not elasticsearch.Client or TypedClient: both refuse any server whose 2xx
// answers lack the header `X-Elastic-Product: Elasticsearch`, which OpenSearch
// never sends ("the client noticed that the server is not Elasticsearch"), and
// TypedClient sends the `compatible-with=8` media type, which OpenSearch 2.x
// rejects with 406 as the Content-Type of a request body. Do not use them, and do
// not set ELASTIC_CLIENT_APIVERSIONING.
//
// What is portable: the REST APIs both engines share (documents, bulk, search
// with the query DSL and the common aggregations, mappings, composable
// _index_template, aliases, refresh). Use Client.Flavor where behaviour differs
// (for example security, ILM versus ISM, data streams, newer field types).
//
// # Errors
//
// Transport failures and non-2xx answers become errors that say what was being
// done; a non-2xx answer is an *Error carrying the HTTP status and the server's
// error type and reason (HasStatus tests the status through wrapping). Bulk
// returns a *BulkError listing each failed item: no item is ever dropped silently.
package esclient
