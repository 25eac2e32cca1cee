package main

import (
	"flag"

	"github.com/hourglass-io/hourglass/internal/esclient"
)

// esFlags are the Elasticsearch connection flags every command that talks to
// it shares: --es-url (comma-separated), --es-username, --es-password.
type esFlags struct {
	urls, user, pass *string
}

func addESFlags(fs *flag.FlagSet, defaultURL, userHelp string) esFlags {
	return esFlags{
		urls: fs.String("es-url", defaultURL, "Elasticsearch/OpenSearch URLs, comma-separated"),
		user: fs.String("es-username", "", userHelp),
		pass: fs.String("es-password", "", "Elasticsearch basic auth password"),
	}
}

func (f esFlags) config() esclient.Config {
	return esclient.Config{URLs: splitList(*f.urls), Username: *f.user, Password: *f.pass}
}

func (f esFlags) client() (*esclient.Client, error) { return esclient.New(f.config()) }
