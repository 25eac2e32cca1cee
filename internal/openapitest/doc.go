// Package openapitest checks real HTTP exchanges against a service's OpenAPI
// 3 document, for unit tests. It is a thin layer over
// github.com/getkin/kin-openapi: the document is parsed and validated by
// openapi3, an exchange is routed by routers/gorillamux and checked by
// openapi3filter.ValidateResponse.
//
//	spec := openapitest.Load(t, ingress.OpenAPI)   // the document must be valid OpenAPI 3.0.3
//	spec.Check(t, req, res, body)                  // one recorded exchange
//	srv := httptest.NewServer(spec.Handler(t, h))  // every exchange h serves
//	require.Empty(t, spec.Uncovered())             // every documented status was seen
//
// # What is checked
//
//   - the path and method are in the document;
//   - the status is documented (an undocumented status fails);
//   - the response headers the document describes match their schemas
//     (a header marked required must be there);
//   - the Content-Type is one the document lists for that status, and a
//     response with a body documents a content at all;
//   - a JSON (or text/plain) body matches its schema;
//   - application/x-ndjson: each line is a JSON value matching the
//     component schema named by [NDJSON], the last one the schema named for
//     the last line;
//   - text/event-stream: the data of each event matches the component
//     schema named by [SSE].
//
// Objects are closed: a schema with properties and no additionalProperties
// is checked as if it said additionalProperties: false, so a field the
// service writes but the document does not name is a mismatch too (drift
// goes both ways). A schema that is one of several allOf members stays
// open, as JSON Schema composition needs. A document that means an open
// object says additionalProperties: true (or a schema) explicitly.
package openapitest
