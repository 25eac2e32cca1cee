package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/flagenv"
	"github.com/hourglass-io/hourglass/internal/telemetry"
	"github.com/hourglass-io/hourglass/services/ingress"
)

const ingressHelp = `Serves POST /v1/logs: traffic records as NDJSON or a JSON array, optionally
gzip-compressed, authenticated by API key (the key decides the tenant). Answers
202 only after the sink confirmed every accepted record; rejected records go to
the DLQ. Every status and reason code: the OpenAPI 3 document, GET /openapi.json
(services/ingress/openapi.json), and services/ingress/doc.go.
The API keys file is reloaded on SIGHUP and when it changes.
/healthz, /readyz and /openapi.json are served on --api-addr too; /metrics on --listen-addr (the admin address).`

func runIngress(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := ingress.DefaultConfig()
	fs := flag.NewFlagSet("ingress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.ListenAddr, "api-addr", cfg.ListenAddr, "intake address (/v1/logs, /healthz, /readyz, /openapi.json)")
	fs.StringVar(&cfg.KeysFile, "keys-file", cfg.KeysFile, "API keys file (tenant + SHA-256 of each key)")
	fs.DurationVar(&cfg.KeysReload, "keys-reload", cfg.KeysReload, "how often the keys file is checked for changes")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest request body as sent (compressed)")
	fs.Int64Var(&cfg.MaxInflatedBytes, "max-inflated-bytes", cfg.MaxInflatedBytes, "largest body after gzip decompression")
	fs.IntVar(&cfg.MaxRecords, "max-records", cfg.MaxRecords, "most records per request")
	fs.IntVar(&cfg.MaxLineBytes, "max-line-bytes", cfg.MaxLineBytes, "largest single record")
	fs.Float64Var(&cfg.TenantRate, "tenant-rate", cfg.TenantRate, "records per second per tenant")
	fs.IntVar(&cfg.TenantBurst, "tenant-burst", cfg.TenantBurst, "records a tenant may send at once")
	fs.DurationVar(&cfg.MaxFuture, "max-future", cfg.MaxFuture, "reject records whose event time is more than this after the ingress clock (keep below the catalog's smallest allowed lateness)")
	fs.DurationVar(&cfg.MaxPast, "max-past", cfg.MaxPast, "reject records whose event time is more than this before the ingress clock")
	fs.IntVar(&cfg.MaxConcurrent, "max-concurrent", cfg.MaxConcurrent, "requests served at once; more get 503 overloaded")
	fs.Int64Var(&cfg.MaxInflightBytes, "max-inflight-bytes", cfg.MaxInflightBytes, "bytes all requests may hold at once (line buffers, records kept for the sink); more get 503 overloaded")
	fs.DurationVar(&cfg.SinkTimeout, "sink-timeout", cfg.SinkTimeout, "how long a request waits for the sink before 503")
	fs.DurationVar(&cfg.RetryAfter, "retry-after", cfg.RetryAfter, "Retry-After sent with 503")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "drain time for in-flight requests on SIGTERM")
	sinkKind := fs.String("sink", "kafka", "where accepted records go: kafka (direct mode) or fluentd (forward protocol with acks to the aggregator)")
	fluentdAddr := fs.String("fluentd-addr", "127.0.0.1:24224", "fluentd sink: the aggregator's forward input, host:port")
	fluentdTLS := fs.Bool("fluentd-tls", true, "fluentd sink: TLS to the aggregator, verifying its certificate (aggregator.conf <transport tls>)")
	fluentdCA := fs.String("fluentd-ca-file", "", "fluentd sink: PEM CA that signed the aggregator's certificate (default: the system roots)")
	fluentdServerName := fs.String("fluentd-server-name", "", "fluentd sink: name the aggregator's certificate must carry (default: the host of --fluentd-addr)")
	fluentdKeyFile := fs.String("fluentd-shared-key-file", "", "fluentd sink: file holding the aggregator's <security> shared_key (empty: no handshake)")
	fluentdKey := fs.String("fluentd-shared-key", "", "fluentd sink: the shared key itself; set it through the environment (HOURGLASS_FLUENTD_SHARED_KEY), not on the command line")
	fluentdHostname := fs.String("fluentd-hostname", "", "fluentd sink: self_hostname sent in the handshake; must differ from the aggregator's (default: the host name)")
	brokers := fs.String("brokers", "127.0.0.1:9092", "kafka sink: bootstrap brokers, comma-separated")
	topic := fs.String("topic", "hourglass.logs.raw", "kafka sink: topic of accepted records")
	dlq := fs.String("dlq-topic", "hourglass.logs.dlq", "kafka sink: topic of rejected records")
	partitions := fs.Int("partitions", 6, "kafka sink: partitions of the topics when they have to be created")
	adm := addAdminFlags(fs, "listen-addr", "127.0.0.1:9101", "admin HTTP address (/metrics, /healthz, /readyz)")
	removed := fs.String("admin-addr", "", "removed: the admin address is --listen-addr, as for every service, and the intake --api-addr")
	fs.Usage = flagenv.Usage(fs, "hourglass ingress [flags]", ingressHelp)
	if err := parseFlags(ctx, fs, args, stderr); err != nil {
		return err
	}
	if *removed != "" {
		fmt.Fprintln(stderr, "hourglass ingress: --admin-addr was renamed --listen-addr (the admin address, as for every service); the intake address is --api-addr")
		return errUsage
	}
	log, err := adm.logger(stderr)
	if err != nil {
		return err
	}
	var sink ingress.Sink
	switch strings.ToLower(*sinkKind) {
	case "kafka":
		var ks *ingress.KafkaSink
		ks, err = ingress.NewKafkaSink(ingress.KafkaSinkConfig{
			Brokers: splitList(*brokers), Topic: *topic, DLQTopic: *dlq, Partitions: *partitions})
		if err == nil {
			sink = ks
			ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if eerr := ks.EnsureTopics(ectx); eerr != nil {
				log.Warn("raw and DLQ topics not ensured; /readyz says not ready until they exist", "error", eerr)
			}
			cancel()
		}
	case "fluentd":
		fcfg := ingress.FluentdSinkConfig{Addr: *fluentdAddr, TLS: *fluentdTLS, CAFile: *fluentdCA,
			ServerName: *fluentdServerName, SelfHostname: *fluentdHostname}
		switch fcfg.SharedKey = strings.TrimSpace(*fluentdKey); {
		case *fluentdKeyFile != "" && fcfg.SharedKey != "":
			err = fmt.Errorf("--fluentd-shared-key and --fluentd-shared-key-file: set one")
		case *fluentdKeyFile != "":
			fcfg.SharedKey, err = ingress.ReadFluentdSharedKey(*fluentdKeyFile)
		}
		if err == nil {
			sink, err = ingress.NewFluentdSink(fcfg)
		}
	default:
		err = fmt.Errorf("--sink %q: unknown sink (kafka, fluentd)", *sinkKind)
	}
	if err != nil {
		return err
	}
	defer func() { // after the service drained: every accepted record was written
		if cerr := sink.Close(); cerr != nil {
			log.Warn("close sink", "error", cerr)
		}
	}()
	reg := telemetry.NewRegistry()
	svc, err := ingress.New(cfg, sink, log, reg)
	if err != nil {
		return err
	}
	defer onHangup(svc.ReloadKeys)()
	return adm.serveService(ctx, service{name: "ingress", reg: reg, log: log, check: "sink", ready: svc.Ready,
		listen: svc.Listen, run: svc.Run,
		attrs: func() []any { return []any{"listen", svc.Addr(), "sink", *sinkKind} }})
}
