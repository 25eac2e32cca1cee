package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/catalog"
	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/internal/tenants"
)

const tenantsHelp = `Isolates a customer in Elasticsearch and Kibana, idempotently.

  provision <tenant>...   per catalog metric, the filtered alias
                          hourglass-metrics-<metric>-tenant-<tenant> (term tenant)
                          on every index of the metric, next month's included;
                          the role hourglass-tenant-<tenant> reading only those
                          aliases (Elasticsearch security API; skipped on
                          OpenSearch); with --kibana-url, the Kibana space
                          tenant-<tenant> with the tenant's data views and dashboard.

Run it again at least monthly (a new month's index joins the tenant's aliases
only then) and after a catalog change. Run 'hourglass es setup' first.`

func runTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tenants", flag.ContinueOnError)
	fs.SetOutput(stderr)
	esf := addESFlags(fs, "http://127.0.0.1:9200", "Elasticsearch basic auth user (needs manage_security for the role)")
	catalogPath := fs.String("catalog", defaultCatalog, "metric catalog file")
	kibanaURL := fs.String("kibana-url", "", "Kibana base URL, e.g. http://kibana:5601 (empty: no space, no dashboards)")
	kibanaUser := fs.String("kibana-username", "", "Kibana basic auth user")
	kibanaPass := fs.String("kibana-password", "", "Kibana basic auth password")
	kibanaKey := fs.String("kibana-api-key", "", "Kibana auth: an Elasticsearch API key (base64 id:key) instead of a user")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = flagenv.Usage(fs, "hourglass tenants [flags] provision <tenant>...", tenantsHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() < 2 || fs.Arg(0) != "provision" {
		fs.Usage()
		return errUsage
	}
	names := fs.Args()[1:]
	for _, t := range names {
		if err := tenants.ValidateTenant(t); err != nil {
			return err
		}
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
	p := &tenants.Provisioner{ES: es, Catalog: c, Log: log.With("component", "tenants")}
	if *kibanaURL != "" {
		p.Kibana = &tenants.Kibana{URL: *kibanaURL, Username: *kibanaUser, Password: *kibanaPass, APIKey: *kibanaKey,
			Client: &http.Client{Timeout: 30 * time.Second}}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for _, t := range names {
		rep, err := p.Provision(ctx, t)
		if err != nil {
			return fmt.Errorf("provision %s: %w", t, err)
		}
		fmt.Fprintf(stdout, "%s: aliases %s (on %d indices)\n", t, strings.Join(rep.Aliases, ", "), len(rep.Indices))
		fmt.Fprintf(stdout, "%s: role: %s\n", t, rep.Role)
		fmt.Fprintf(stdout, "%s: kibana: %s, %d saved objects imported\n", t, rep.Space, rep.Imported)
	}
	return nil
}
