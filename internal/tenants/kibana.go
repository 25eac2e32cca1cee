package tenants

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
)

// Kibana calls the Kibana HTTP APIs provisioning needs: spaces and saved
// objects import. Every request carries kbn-xsrf, which Kibana requires of
// every non-GET API call.
type Kibana struct {
	URL                string // base URL, e.g. http://kibana:5601
	Username, Password string // basic auth; or
	APIKey             string // an Elasticsearch API key, base64 "id:key"
	Client             *http.Client
}

// Space is a Kibana space (POST /api/spaces/space).
type Space struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Description      string   `json:"description,omitempty"`
	DisabledFeatures []string `json:"disabledFeatures"`
}

// EnsureSpace creates the space, or updates it when it exists (409).
func (k *Kibana) EnsureSpace(ctx context.Context, s Space) (string, error) {
	if s.DisabledFeatures == nil {
		s.DisabledFeatures = []string{}
	}
	body, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("tenants: encode space %s: %w", s.ID, err)
	}
	status, answer, err := k.do(ctx, http.MethodPost, "/api/spaces/space", "application/json", body)
	if err != nil {
		return "", fmt.Errorf("tenants: create Kibana space %s: %w", s.ID, err)
	}
	switch {
	case status == http.StatusOK:
		return "created space " + s.ID, nil
	case status != http.StatusConflict:
		return "", fmt.Errorf("tenants: create Kibana space %s: %d %s", s.ID, status, answer)
	}
	status, answer, err = k.do(ctx, http.MethodPut, "/api/spaces/space/"+url.PathEscape(s.ID), "application/json", body)
	if err != nil {
		return "", fmt.Errorf("tenants: update Kibana space %s: %w", s.ID, err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("tenants: update Kibana space %s: %d %s", s.ID, status, answer)
	}
	return "updated space " + s.ID, nil
}

// Import uploads saved objects (NDJSON) into a space, overwriting objects with
// the same ids, and returns how many Kibana imported.
func (k *Kibana) Import(ctx context.Context, space, filename string, ndjson []byte) (int, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file", filename)
	if err != nil {
		return 0, fmt.Errorf("tenants: import into space %s: %w", space, err)
	}
	if _, err := part.Write(ndjson); err != nil {
		return 0, fmt.Errorf("tenants: import into space %s: %w", space, err)
	}
	if err := mw.Close(); err != nil {
		return 0, fmt.Errorf("tenants: import into space %s: %w", space, err)
	}
	path := "/s/" + url.PathEscape(space) + "/api/saved_objects/_import?overwrite=true"
	status, answer, err := k.do(ctx, http.MethodPost, path, mw.FormDataContentType(), body.Bytes())
	if err != nil {
		return 0, fmt.Errorf("tenants: import into space %s: %w", space, err)
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("tenants: import into space %s: %d %s", space, status, answer)
	}
	var res struct {
		Success      bool `json:"success"`
		SuccessCount int  `json:"successCount"`
		Errors       []struct {
			Type  string `json:"type"`
			ID    string `json:"id"`
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		return 0, fmt.Errorf("tenants: import into space %s: decode answer: %w", space, err)
	}
	if !res.Success {
		var problems []string
		for _, e := range res.Errors {
			problems = append(problems, e.Type+" "+e.ID+": "+e.Error.Type)
		}
		return res.SuccessCount, fmt.Errorf("tenants: import into space %s: %w: %s", space, errImport, strings.Join(problems, "; "))
	}
	return res.SuccessCount, nil
}

func (k *Kibana) do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(k.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("kbn-xsrf", "true")
	req.Header.Set("Content-Type", contentType)
	switch {
	case k.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+k.APIKey)
	case k.Username != "":
		req.SetBasicAuth(k.Username, k.Password)
	}
	client := k.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	return res.StatusCode, answer, nil
}
