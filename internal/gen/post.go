package gen

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Poster sends NDJSON batches to the ingress API (POST /v1/logs), one API key
// per tenant, retrying 429 and 503 answers after their Retry-After.
type Poster struct {
	URL         string // e.g. http://127.0.0.1:8080/v1/logs
	KeyTemplate string // API key of a tenant: "{tenant}" is replaced by its name
	Gzip        bool
	MaxRetries  int
	Client      *http.Client
}

// PostResult is the ingress's answer to one batch, after retries.
type PostResult struct {
	Status   int
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	Retries  int
}

// Key returns the API key of tenant.
func (p *Poster) Key(tenant string) string {
	return strings.ReplaceAll(p.KeyTemplate, "{tenant}", tenant)
}

// Post sends one tenant's lines as one request. A 2xx, 413, 415, 422, 400,
// 401 or 403 answer is final; 429 and 503 are retried up to MaxRetries.
func (p *Poster) Post(ctx context.Context, tenant string, lines [][]byte) (PostResult, error) {
	body := bytes.Join(lines, []byte("\n"))
	body = append(body, '\n')
	if p.Gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = b.Bytes()
	}
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	var res PostResult
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
		if err != nil {
			return res, fmt.Errorf("gen: build request: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set("Authorization", "Bearer "+p.Key(tenant))
		if p.Gzip {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil || attempt >= p.MaxRetries {
				return res, fmt.Errorf("gen: post %d records for %s: %w", len(lines), tenant, err)
			}
			wait = time.Second
		} else {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			res.Status = resp.StatusCode
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
				_ = json.Unmarshal(b, &res)
				return res, nil
			}
			if attempt >= p.MaxRetries {
				return res, fmt.Errorf("gen: post for %s: still %d after %d retries: %s", tenant, resp.StatusCode, attempt, bytes.TrimSpace(b))
			}
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			wait = time.Duration(max(secs, 1)) * time.Second
		}
		res.Retries++
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(wait):
		}
	}
}
