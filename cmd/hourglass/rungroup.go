package main

import (
	"context"
	"errors"
	"sync"
)

// runGroup runs each function until ctx is done or one of them returns; then
// cancels the rest and waits for all. It returns every non-nil error.
// Functions are started in order: put sinks before sources.
func runGroup(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			cancel() // one member stopping stops the group
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
