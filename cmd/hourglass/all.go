package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hourglass-io/hourglass/internal/flagenv"
)

const allHelp = `Runs every Go service of Hourglass in one process, for the single-machine mode,
from one YAML file:

  shared:                 # every service that has the flag takes it, as if from
    brokers: 127.0.0.1:19092   # HOURGLASS_<FLAG> (a variable already set wins)
    catalog: metrics-jobs/catalog.yaml
  services:               # the services to run, each with its own flags
    ingress:  {listen-addr: 127.0.0.1:8080, keys-file: keys.yaml, admin-addr: 127.0.0.1:9101}
    router:   {listen-addr: 127.0.0.1:9102}
    archiver: {archive-root: /tmp/archive, listen-addr: 127.0.0.1:9103}
    indexer:  {es-url: http://127.0.0.1:19200, listen-addr: 127.0.0.1:9104}
    logpeek:  {archive-root: /tmp/archive, tokens: tokens.yaml, api-addr: 127.0.0.1:8090}
    lagmon:   {es-url: http://127.0.0.1:19200, listen-addr: 127.0.0.1:9106}

Each service keeps its own admin address (/metrics, /healthz, /readyz) and logs
with its component name. Sinks start before sources (the consumers, then the
ingress); on SIGTERM every service drains its in-flight work; if one fails, the
others are stopped. An example: deploy/all.example.yaml.`

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
		{"ingress", "", runIngress},
	}
}

func runAll(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("all", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "deploy/all.example.yaml", "the YAML file: shared flags and one section per service")
	fs.Usage = flagenv.Usage(fs, "hourglass all [--config FILE]", allHelp)
	if err := parseFlags(fs, args, stderr); err != nil {
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
	// Shared flags reach every service through the shared HOURGLASS_<FLAG>
	// variables flagenv reads; a variable already set in the environment wins.
	for k, v := range cfg.Shared {
		if _, set := os.LookupEnv(flagenv.EnvName(k)); !set {
			if err := os.Setenv(flagenv.EnvName(k), v); err != nil {
				return fmt.Errorf("shared.%s: %w", k, err)
			}
		}
	}
	var fns []func(context.Context) error
	for _, s := range allServices() {
		flags, ok := cfg.Services[s.name]
		if !ok {
			continue
		}
		argv := serviceArgs(flags)
		fns = append(fns, func(ctx context.Context) error {
			if err := s.run(ctx, argv, stdout, stderr); err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		})
	}
	return runGroup(ctx, fns...)
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
