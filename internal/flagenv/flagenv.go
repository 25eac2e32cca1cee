// Package flagenv gives every hourglass command the same configuration rule:
// a flag's value comes from the command line if given there, else from the
// environment variable HOURGLASS_<COMMAND>_<FLAG> (e.g. HOURGLASS_ROUTER_BATCH_SIZE),
// else from the shared HOURGLASS_<FLAG> (e.g. HOURGLASS_BROKERS, read by every
// service), else from the shared values the context carries (WithShared:
// `hourglass all`'s shared: section, which sets no environment variable),
// else from its default. Names are upper case with dashes and dots as
// underscores; the command is the FlagSet's name.
package flagenv

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the shared environment variable of the flag named name.
func EnvName(name string) string {
	return "HOURGLASS_" + strings.NewReplacer("-", "_", ".", "_", " ", "_").Replace(strings.ToUpper(name))
}

// CommandEnvName is the command-specific environment variable of a flag.
func CommandEnvName(command, name string) string { return EnvName(command + "_" + name) }

type sharedKey struct{}

// WithShared returns a context carrying shared flag values by flag name: a
// command parsed with ParseContext takes one for a flag that neither its
// command line nor the environment sets (a command without that flag
// ignores it).
func WithShared(ctx context.Context, shared map[string]string) context.Context {
	return context.WithValue(ctx, sharedKey{}, shared)
}

// lookup returns the flag's value from the environment (or the shared
// values) and where it came from.
func lookup(command, name string, shared map[string]string) (value, source string, ok bool) {
	for _, v := range []string{CommandEnvName(command, name), EnvName(name)} {
		if val, ok := os.LookupEnv(v); ok {
			return val, "environment " + v, true
		}
	}
	if val, ok := shared[name]; ok {
		return val, "shared." + name, true
	}
	return "", "", false
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment variable. A bad environment value is an error
// naming the variable.
func Parse(fs *flag.FlagSet, args []string) error {
	return ParseContext(context.Background(), fs, args)
}

// ParseContext is Parse, with the shared values of ctx (WithShared) as the
// last source before the default.
func ParseContext(ctx context.Context, fs *flag.FlagSet, args []string) error {
	shared, _ := ctx.Value(sharedKey{}).(map[string]string)
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, source, ok := lookup(fs.Name(), f.Name, shared); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", source, v, serr)
			}
		}
	})
	return err
}

// Usage returns a flag.FlagSet Usage function that prints a synopsis, a
// description, and every flag with its environment variable.
func Usage(fs *flag.FlagSet, synopsis, description string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopsis, strings.TrimSpace(description))
		var any bool
		fs.VisitAll(func(*flag.Flag) { any = true })
		if !any {
			return
		}
		fmt.Fprintln(w, "\nFlags (each also settable by its environment variable):")
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s  [%s or %s]\n      %s%s\n", f.Name, CommandEnvName(fs.Name(), f.Name), EnvName(f.Name), f.Usage, def)
		})
	}
}
