package agent

import (
	"context"
	"errors"
	"time"
)

// finalError (see permanent) ends retrying with the error it wraps.
type finalError struct{ error }

func (e finalError) Unwrap() error { return e.error }

// permanent marks an error that retrying cannot fix.
func permanent(err error) error { return finalError{err} }

// backoff calls try until it returns nil or a permanent error, or ctx ends. After
// each other failure it tells failed the error and the wait that follows: a
// second, then twice as long each time, at most max.
func backoff(ctx context.Context, max time.Duration, try func() error, failed func(err error, wait time.Duration)) error {
	for delay := time.Second; ; delay = min(2*delay, max) {
		err := try()
		if err == nil {
			return nil
		}
		var f finalError
		if errors.As(err, &f) {
			return f.error
		}
		failed(err, delay)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}
