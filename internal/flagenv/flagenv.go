// Package flagenv gives every hourglass command the same configuration rule:
// a flag's value comes from the command line if given there, else from the
// environment variable HOURGLASS_<FLAG NAME> (upper case, dashes and dots as
// underscores), else from its default.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the environment variable that sets the flag named name.
func EnvName(name string) string {
	return "HOURGLASS_" + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(name))
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment variable. A bad environment value is an error
// naming the variable.
func Parse(fs *flag.FlagSet, args []string) error {
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
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("environment %s=%q: %w", EnvName(f.Name), v, serr)
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
			fmt.Fprintf(w, "  --%s  [%s]\n      %s%s\n", f.Name, EnvName(f.Name), f.Usage, def)
		})
	}
}
