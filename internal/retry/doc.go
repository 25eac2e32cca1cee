// Package retry is Hourglass's one vocabulary for failures: permanent ones
// (the same attempt fails the same way: malformed input, a refused
// credential, a document the cluster will never take) and retryable ones
// (backpressure, an unavailable sink, a lost connection), and its one
// backoff loop.
//
// An error is retryable unless marked with [Permanent]; [IsPermanent] sees
// the mark through wrapping. [RetryableStatus] classifies HTTP answers the
// same way; [RetryableStatuses] is that classification as data, the form the
// metric jobs' Python driver receives in its job spec (internal/catalog), so
// that it has no list of its own. [Backoff.Do] runs an attempt until it succeeds, fails for good,
// runs out of attempts or its context ends, waiting between attempts with
// exponential backoff: Initial, then × Factor after each failure, at most
// Max.
package retry
