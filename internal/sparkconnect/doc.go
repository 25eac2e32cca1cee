// Package sparkconnect is how Hourglass opens a Spark Connect session: through the
// pool (several Spark Connect servers behind HAProxy, haproxy/spark-connect.cfg),
// with spark-connect-go.
//
// The contract with the pool:
//
//   - Every request of a session carries the header x-hourglass-session (SessionHeader)
//     with the session's id. HAProxy pins the id to one server (stick table) and refuses
//     requests without it (gRPC INVALID_ARGUMENT, ErrNoSessionHeader). The Spark-side
//     session id is the same UUID, so a server's logs and the header name one session.
//   - The client remembers the server-side session id the server reported and sends it
//     back (client_observed_server_side_session_id) on every request. A server that
//     does not hold that session — its server died and HAProxy moved the session, the
//     server restarted, or the session expired — answers INVALID_HANDLE.SESSION_CHANGED
//     (or SESSION_CLOSED), and the client returns ErrSessionLost. Temp views, cached
//     data and settings of a lost session are gone: the caller opens a new session.
//   - gRPC UNAVAILABLE (HAProxy has no server up, the pool is restarting) is retried
//     with exponential backoff within the caller's context deadline; then ErrUnavailable.
//   - Context deadlines are honoured: a cancelled call returns the context's error, and
//     Spark interrupts the query of a cancelled (non-reattachable) execution.
//
// Results are bounded: SQL returns at most Config.MaxRows rows (ErrTooManyRows beyond).
package sparkconnect
