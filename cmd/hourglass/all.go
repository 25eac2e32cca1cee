package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/flagenv"
)

const allHelp = `Runs every Go service of Hourglass in one process, for the single-machine mode,
from one YAML file:

  shared:                 # every service that has the flag takes it, as if from
    brokers: 127.0.0.1:19092   # HOURGLASS_<FLAG> (a variable already set wins)
    catalog: metrics-jobs/catalog.yaml
  services:               # the services to run, each with its own flags (here: their defaults)
    ingress:  {api-addr: 127.0.0.1:8080, keys-file: keys.yaml, listen-addr: 127.0.0.1:9101}
    router:   {listen-addr: 127.0.0.1:9102}
    archiver: {archive-root: /tmp/archive, listen-addr: 127.0.0.1:9104}
    indexer:  {es-url: http://127.0.0.1:19200, listen-addr: 127.0.0.1:9105}
    logpeek:  {archive-root: /tmp/archive, tokens: tokens.yaml, api-addr: 127.0.0.1:8090, listen-addr: 127.0.0.1:9106}
    lagmon:   {es-url: http://127.0.0.1:19200, listen-addr: 127.0.0.1:9107}
    query:    {archive-root: /tmp/archive, tokens: tokens.yaml, spark-connect-pool: sc://127.0.0.1:15000, api-addr: 127.0.0.1:8095, listen-addr: 127.0.0.1:9108}

Each service keeps its own admin address (/metrics, /healthz, /readyz) and logs
with its component name. Sinks start before sources (the consumers, then the
ingress); on SIGTERM the services stop the other way round, each after the one
started after it has drained (the ingress first, the lag monitor last). A service that
fails while running is restarted with backoff (1s, doubling, at most 30s) and
the others keep running; one that fails within 10s of the first start stops
the whole process with its error. An example: deploy/all.example.yaml.`

// allConfig is the file of `hourglass all`.
type allConfig struct {
	Shared   map[string]string            `yaml:"shared"`
	Services map[string]map[string]string `yaml:"services"`
}

// allServices lists the services `hourglass all` can run, in start order:
// sinks before sources.
func allServices() []command {
	return []command{
		{"lagmon", "", runLagmon},
		{"indexer", "", runIndexer},
		{"archiver", "", runArchiver},
		{"router", "", runRouter},
		{"logpeek", "", runLogpeek},
		{"query", "", runQuery},
		{"ingress", "", runIngress},
	}
}

func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "deploy/all.example.yaml", "the YAML file: shared flags and one section per service")
	fs.Usage = flagenv.Usage(fs, "hourglass all [--config FILE]", allHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("read %s: %w", *path, err)
	}
	var cfg allConfig
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("%s: %w", *path, err)
	}
	var known []string
	for _, s := range allServices() {
		known = append(known, s.name)
	}
	for name := range cfg.Services {
		if !slices.Contains(known, name) {
			return fmt.Errorf("%s: services.%s: unknown service (one of %s)", *path, name, strings.Join(known, ", "))
		}
	}
	if len(cfg.Services) == 0 {
		return fmt.Errorf("%s: no services to run", *path)
	}
	// Shared flags reach every service that has the flag through the
	// context (flagenv.WithShared), after its command line and environment.
	ctx = flagenv.WithShared(ctx, cfg.Shared)
	log := slog.New(slog.NewJSONHandler(stderr, nil)).With("component", "all")
	var fns []func(context.Context) error
	for _, s := range allServices() {
		flags, ok := cfg.Services[s.name]
		if !ok {
			continue
		}
		argv := serviceArgs(flags)
		fns = append(fns, restarting(s.name, log, restartPolicy{}, func(ctx context.Context) error {
			return s.run(ctx, argv, stdout, stderr)
		}))
	}
	return runGroup(ctx, fns...)
}

// restartPolicy decides what `hourglass all` does when one service fails.
type restartPolicy struct {
	// StartupGrace: a service that fails before it ran this long, on its
	// first start, has a broken configuration or environment: the whole
	// process stops and says so (as a container would crash-loop visibly).
	StartupGrace time.Duration
	// MinBackoff and MaxBackoff bound the wait before a restart.
	MinBackoff, MaxBackoff time.Duration
}

func (p restartPolicy) withDefaults() restartPolicy {
	if p.StartupGrace == 0 {
		p.StartupGrace = 10 * time.Second
	}
	if p.MinBackoff == 0 {
		p.MinBackoff = time.Second
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = 30 * time.Second
	}
	return p
}

// restarting runs fn until ctx ends, restarting it with backoff when it
// fails after its startup grace: one service's transient failure (a broker
// restarting, a lost coordinator) must not stop the other services of the
// process, as it would not stop other pods. A failure during the first
// start's grace period is returned and stops the group.
func restarting(name string, log *slog.Logger, p restartPolicy, fn func(context.Context) error) func(context.Context) error {
	p = p.withDefaults()
	return func(ctx context.Context) error {
		backoff := p.MinBackoff
		for attempt := 0; ; attempt++ {
			began := time.Now()
			err := fn(ctx)
			if ctx.Err() != nil {
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				return nil
			}
			if err == nil {
				err = errors.New("stopped by itself")
			}
			ran := time.Since(began)
			if attempt == 0 && ran < p.StartupGrace {
				return fmt.Errorf("%s: failed at start: %w", name, err)
			}
			if ran > 2*p.MaxBackoff {
				backoff = p.MinBackoff // it ran well for a while: a fresh failure
			}
			log.Error("service failed; restarting it, the others keep running", "service", name,
				"error", err, "ran_for", ran.Round(time.Millisecond), "restart_in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, p.MaxBackoff)
		}
	}
}

// serviceArgs turns a service's section into --flag=value arguments, sorted.
func serviceArgs(flags map[string]string) []string {
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, "--"+k+"="+flags[k])
	}
	return out
}
