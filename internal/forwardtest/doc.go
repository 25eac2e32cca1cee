// Package forwardtest is a Fluentd forward-protocol server for tests: the
// receiving half of what a Fluentd aggregator's in_forward does, so the Go
// client side (fluent-logger-golang in the ingress's Fluentd sink) is tested
// against a real protocol peer over TCP rather than a mock.
//
// # What it implements (Forward Protocol Specification v1)
//
//   - MessagePack over TCP; one connection carries any number of messages.
//   - Message mode        [tag, time, record, option?]
//   - Forward mode        [tag, [[time, record], ...], option?]
//   - PackedForward mode  [tag, bin|str (concatenated [time, record] entries), option?],
//     with option "compressed": "gzip" (CompressedPackedForward).
//   - time as an integer (seconds) or EventTime (extension type 0: seconds and
//     nanoseconds, big endian uint32 each).
//   - option "chunk": the server answers {"ack": <chunk>} after the events of
//     the message were stored, which is what require_ack_response / RequestAck
//     rely on.
//   - Transport security, as in_forward with <transport tls> and <security>:
//     [WithTLS] accepts TLS only; [WithSharedKey] runs the handshake (HELO
//     with a binary nonce, PING checked against
//     sha512_hex(salt + client_hostname + nonce + shared_key), PONG with the
//     server's own digest, or PONG false and a closed connection). [NewPKI]
//     makes a throwaway CA and server certificate.
//
// Not implemented: user authentication (user_auth), client-certificate
// checks, UDP heartbeats, and JSON-encoded messages.
//
// # Durability model
//
// Events go to a [Store] that outlives a [Server]: a crashed and restarted
// server keeps what it stored, like Fluentd's file buffer. Events are stored
// before the ack is written, so "acked" implies "stored"; a server that dies
// between storing and acking causes the client to resend the chunk, and the
// store counts such duplicates by chunk id. Fault injection ([Server.CrashAfter],
// [Server.DropAcks]) reproduces both orders of failure.
package forwardtest
