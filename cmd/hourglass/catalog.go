package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/esclient"
	"github.com/hourglass-io/hourglass/internal/essetup"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/kibana"
)

const defaultCatalog = "metrics-jobs/catalog.yaml"

const catalogHelp = `Validates and compiles the metric catalog.

  validate                      load and check the catalog; print a summary
  render spark [metric...]      the Spark job specs (JSON) the metric jobs run;
                                with --out DIR, one DIR/<metric>.json per metric
  render topics                 the Kafka topics and consumer groups of the metrics
  render kibana                 the Kibana 8 saved objects (NDJSON): a data view per
                                metric alias, the charts, the freshness panel and the
                                customer dashboard, checked against the index templates
                                (kibana/saved-objects.ndjson is this output)`

func runCatalog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("catalog", defaultCatalog, "metric catalog file")
	out := fs.String("out", "", "render spark: write one <metric>.json per metric into this directory")
	asJSON := fs.Bool("json", false, "render topics: print JSON instead of a table")
	fs.Usage = flagenv.Usage(fs, "hourglass catalog [flags] validate | render spark [metric...] | render topics | render kibana", catalogHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errUsage
	}
	c, err := catalog.Load(*path)
	if err != nil {
		return err
	}
	switch {
	case rest[0] == "validate" && len(rest) == 1:
		fmt.Fprintf(stdout, "%s: %d metrics OK\n", *path, len(c.Metrics))
		for _, m := range c.Metrics {
			fmt.Fprintf(stdout, "  %-16s windows %v, lateness %s, SLA %s, %d partitions\n",
				m.Name, m.Windows, m.AllowedLateness, m.FreshnessSLA, m.Partitions)
		}
		return nil
	case rest[0] == "render" && len(rest) >= 2 && rest[1] == "spark":
		return renderSpark(c, rest[2:], *out, stdout)
	case rest[0] == "render" && len(rest) == 2 && rest[1] == "topics":
		return renderTopics(c, *asJSON, stdout)
	case rest[0] == "render" && len(rest) == 2 && rest[1] == "kibana":
		return renderKibana(c, stdout)
	}
	fs.Usage()
	return errUsage
}

func renderSpark(c *catalog.Catalog, names []string, outDir string, stdout io.Writer) error {
	metrics := c.Metrics
	if len(names) > 0 {
		metrics = nil
		for _, n := range names {
			m, ok := c.Metric(n)
			if !ok {
				return fmt.Errorf("render spark: no metric %q in the catalog", n)
			}
			metrics = append(metrics, m)
		}
	}
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return fmt.Errorf("render spark: %w", err)
		}
	}
	for _, m := range metrics {
		b, err := catalog.MarshalSpec(catalog.SparkSpec(m))
		if err != nil {
			return err
		}
		if outDir == "" {
			if _, err := stdout.Write(b); err != nil {
				return err
			}
			continue
		}
		path := filepath.Join(outDir, m.Name+".json")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("render spark: write %s: %w", path, err)
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

func renderTopics(c *catalog.Catalog, asJSON bool, stdout io.Writer) error {
	topics := c.Topics()
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(topics)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tCONSUMER GROUP\tMETRIC")
	for _, t := range topics {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.Topic, t.Partitions, t.ConsumerGroup, t.Metric)
	}
	return tw.Flush()
}

// renderKibana prints the saved objects of the customer dashboard, after
// checking them against the index templates `hourglass es setup` installs.
func renderKibana(c *catalog.Catalog, stdout io.Writer) error {
	objs, err := kibana.Render(c, kibana.Options{})
	if err != nil {
		return err
	}
	schema := kibana.SchemaFromTemplates(essetup.Templates(c, essetup.DefaultConfig(), esclient.Elasticsearch))
	if err := kibana.Validate(objs, schema); err != nil {
		return fmt.Errorf("render kibana: the rendered objects do not match the index templates: %w", err)
	}
	b, err := kibana.MarshalNDJSON(objs)
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}
