// Package query is the query service (DESIGN.md, services/query; seeds 000
// and 003): Spark as a service over the raw-log archive, for many tenants.
//
// A request's structured query is compiled by internal/catalog/archivequery
// for the tenant its bearer token (internal/auth) may read; the service
// never takes a tenant from SQL text. Jobs go through a Manager: admission
// (per-tenant and global limits, 429 with Retry-After), a queue served
// round-robin between tenants, a run on the Engine (SparkEngine: one warm
// Spark Connect session per tenant), and a durable record in the archive's
// file system (Store, under _query/). Every state change is an Event with a
// per-job seq, sent to SSE subscribers and to a Publisher (Kafka, keyed by
// job id).
//
// States: queued → running → succeeded | failed | cancelled (queued may
// also end cancelled). A job never stays running across a restart: Start
// marks such records failed with service_restarted. The API and its error
// codes are in openapi.json, checked against real answers by the tests.
package query
