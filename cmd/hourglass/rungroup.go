package main

import (
	"context"
	"errors"
	"sync"
)

// runGroup runs each function until ctx is done or one of them returns, then
// stops them in reverse order, each after the one started after it has
// returned, and returns every non-nil error.
//
// The lifecycle of every command is written here: functions are started in
// the order given, so put what receives data before what sends it (the
// admin server before its service; in `hourglass all`, the consumers before
// the ingress). Stopping runs the other way: the sources stop first and
// drain into sinks that still run, and the admin server answers /metrics and
// /readyz until its service has drained.
func runGroup(ctx context.Context, fns ...func(context.Context) error) error {
	type member struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var (
		mu      sync.Mutex
		errs    []error
		members = make([]member, len(fns))
		stopped = make(chan struct{}, len(fns)) // one member returned
	)
	for i, fn := range fns {
		// Each member's context ends only when the group stops it, not
		// when ctx ends: the order of stopping is the group's.
		mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		members[i] = member{cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(members[i].done)
			if err := fn(mctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			stopped <- struct{}{}
		}()
	}
	select {
	case <-ctx.Done():
	case <-stopped: // one member stopping stops the group
	}
	for i := len(members) - 1; i >= 0; i-- {
		members[i].cancel()
		<-members[i].done
	}
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}
