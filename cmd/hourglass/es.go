package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/essetup"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/services/indexer"
)

const esHelp = `Prepares Elasticsearch 8 or OpenSearch 2 for Hourglass, idempotently.

  setup    index templates with typed mappings for every metric (from the catalog),
           the aliases hourglass-metrics-<metric>, the side indices' templates
           (hourglass-late-*, hourglass-jobruns) and retention: an ILM policy on
           Elasticsearch, an ISM policy on OpenSearch.`

// esSetupStep is one part of `hourglass es setup` owned by another component.
type esSetupStep struct {
	name string
	run  func(ctx context.Context, es *esclient.Client, replicas int) (string, error)
}

// esSetupSteps lists the setup steps of other components, run after the
// metric indices'. A component with indices of its own adds its step here.
func esSetupSteps() []esSetupStep {
	return []esSetupStep{
		{"indexer (raw-log data stream)", func(ctx context.Context, es *esclient.Client, replicas int) (string, error) {
			cfg := indexer.DefaultSetup()
			cfg.Replicas = replicas
			res, err := indexer.Setup(ctx, es, cfg)
			if err != nil {
				return "", err
			}
			if res.Warning != "" {
				return "retention " + res.Retention + " (" + res.Warning + ")", nil
			}
			return "retention " + res.Retention, nil
		}},
	}
}

func runES(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := essetup.DefaultConfig()
	fs := flag.NewFlagSet("es", flag.ContinueOnError)
	fs.SetOutput(stderr)
	esf := addESFlags(fs, "http://127.0.0.1:9200", "Elasticsearch basic auth user")
	catalogPath := fs.String("catalog", defaultCatalog, "metric catalog file")
	fs.IntVar(&cfg.Shards, "shards", cfg.Shards, "primary shards of each index")
	fs.IntVar(&cfg.Replicas, "replicas", cfg.Replicas, "replicas of each index (0 on a single node)")
	fs.DurationVar(&cfg.Retention, "retention", cfg.Retention, "delete metric indices older than this")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = flagenv.Usage(fs, "hourglass es [flags] setup", esHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 || fs.Arg(0) != "setup" {
		fs.Usage()
		return errUsage
	}
	log, err := telemetry.NewLogger(stderr, *level)
	if err != nil {
		return err
	}
	c, err := catalog.Load(*catalogPath)
	if err != nil {
		return err
	}
	es, err := esf.client()
	if err != nil {
		return err
	}
	defer es.Close(context.Background())
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	rep, err := essetup.Setup(ctx, es, c, cfg, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s: %d index templates (%s)\n", rep.Flavor.Flavor, rep.Flavor.Version,
		len(rep.Templates), strings.Join(rep.Templates, ", "))
	if len(rep.Created) > 0 {
		fmt.Fprintf(stdout, "created indices: %s\n", strings.Join(rep.Created, ", "))
	}
	fmt.Fprintf(stdout, "retention: %s\n", rep.Retention)
	for _, step := range esSetupSteps() {
		what, err := step.run(ctx, es, cfg.Replicas)
		if err != nil {
			return fmt.Errorf("es setup: %s: %w", step.name, err)
		}
		fmt.Fprintf(stdout, "%s: done, %s\n", step.name, what)
	}
	return nil
}
