// Package indexer indexes every raw traffic record into an Elasticsearch
// (or OpenSearch) data stream, logs-hourglass.traffic-<namespace>, with ECS
// field names, for search in Kibana.
//
// # Delivery
//
// The indexer consumes hourglass.logs.raw as consumer group
// hourglass-indexer in batches. Each valid record becomes one ECS document
// (see NewDoc: @timestamp, event.id = request_id, event.duration in
// nanoseconds, http.request.method, http.response.status_code, url.path,
// url.domain, client.ip, user_agent.original, observer.name = edge,
// network.protocol + http.version, organization.id and labels.tenant =
// tenant; rtt and upstream time, which ECS has no field for, under
// hourglass.*, with the Kafka coordinates), sent with a bulk create whose
// _id is <topic>-<partition>-<offset>. A replay therefore sends the same
// _ids, which the data stream refuses with 409: counted as already indexed,
// never as a second copy. Items refused for a transient reason (429, 5xx)
// and failed requests are retried with backoff until they succeed
// (internal/retry); documents the cluster refuses for good (a mapping
// conflict) go to the DLQ with reason index_rejected (internal/dlq), so no
// record is lost silently. Only then are the batch's offsets committed.
//
// Invalid records are skipped and counted; the router DLQs them.
//
// # Setup
//
// Setup (run by `hourglass es setup`) applies the composable index
// template of the data streams (mappings, replicas) and the retention
// policy: ILM on Elasticsearch, ISM on OpenSearch — roll over daily, delete
// backing indices older than the retention.
package indexer
