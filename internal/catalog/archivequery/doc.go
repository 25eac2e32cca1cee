// Package archivequery compiles the query service's structured queries over
// the raw-log archive into Spark SQL. It lives beside the catalog's compiler
// (internal/catalog) and speaks the same filter vocabulary (catalog.Op): Go is
// the only compiler of filters and aggregations, to Go predicates and to
// Spark SQL.
//
// A query cannot cross tenants by construction:
//
//   - The caller's tenant is not read from the query: the service passes the
//     tenant it authorized. The compiled plan names the partitions to read
//     (tenant=<t>/dt=YYYY-MM-DD/hour=HH, laid out by internal/archive) and
//     nothing else, and the relation every statement reads is a CTE that
//     also filters rows on `tenant` and on the event time range.
//   - Identifiers (filter fields, group-by fields, order keys) are checked
//     against the record schema (internal/record) or the query's own output
//     names ([a-z][a-z0-9_]{0,62}), and written back-quoted.
//   - Values are never spliced: a string is written as '…' only when every
//     byte is in a small safe set (letters, digits, space and _.,:/@+=-);
//     anything else becomes CAST(X'<hex>' AS STRING), a binary literal whose
//     text is hex digits only. Numbers are re-formatted from their parsed
//     value (integers as BIGINT, floats as DOUBLE literals).
//   - Free SQL (Query.SQL) is compiled only for admin callers; it is wrapped
//     as a subquery (SELECT * FROM (<sql>) LIMIT n), so it can only be a
//     query, and it still reads the same tenant- and time-filtered relation
//     when a tenant is given.
//
// Every size the caller controls is bounded by Limits.
//
// The statements assume the Spark session time zone is UTC (SessionTimeZone):
// time buckets are rendered as UTC RFC 3339 strings.
package archivequery
