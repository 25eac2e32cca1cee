package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hourglass-io/hourglass/internal/flagenv"
)

// errUsage reports a usage error whose message was already printed: exit 2.
var errUsage = errors.New("usage")

// errHelp reports that --help was asked for and printed: the command exits 0.
var errHelp = errors.New("help printed")

// parseFlags parses args with the flag > HOURGLASS_* env > default rule. It
// returns errHelp after --help, errUsage (after printing why) for bad flags.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	if err := flagenv.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	return nil
}

// onHangup calls fn on every SIGHUP until the returned stop is called.
func onHangup(fn func()) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				fn()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}
