package lagmon

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 document of what the monitor serves on its HTTP
// (admin) address: GET /v1/status, /status and /openapi.json from Handler,
// and the admin server's /metrics, /healthz and /readyz.
//
//go:embed openapi.json
var OpenAPI []byte

// Paths are the paths of the admin server Handler answers: mount it at each.
var Paths = []string{"/v1/status", "/status", "/openapi.json"}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(OpenAPI)
}
