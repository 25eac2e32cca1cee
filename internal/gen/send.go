package gen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Summary counts what a run generated and what the ingress answered.
type Summary struct {
	Generated      int     `json:"generated"`
	Malformed      int     `json:"malformed"`
	Accepted       int     `json:"accepted"`
	Rejected       int     `json:"rejected"`
	Retries        int     `json:"retries"`
	FailedRequests int     `json:"failed_requests"`
	Seconds        float64 `json:"seconds"`
	RecordsPerSec  float64 `json:"records_per_second"`
}

// WriteNDJSON writes count records of g (count <= 0: until ctx ends) to w,
// one per line. keep, if not nil, sees every valid record.
func WriteNDJSON(ctx context.Context, g *Generator, w io.Writer, count int, keep func(record.Record)) (Summary, error) {
	var sum Summary
	bw := bufio.NewWriterSize(w, 1<<20)
	for i := 0; count <= 0 || i < count; i++ {
		if err := ctx.Err(); err != nil {
			_ = bw.Flush()
			return sum, err
		}
		rec, line, valid := g.NextWithLine()
		sum.Generated++
		if !valid {
			sum.Malformed++
		} else if keep != nil {
			keep(rec)
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return sum, fmt.Errorf("gen: write: %w", err)
	}
	return sum, nil
}

// SendConfig paces and batches Send.
type SendConfig struct {
	Count       int     // records to send (<= 0: until ctx ends)
	Rate        float64 // records per second (<= 0: as fast as the ingress takes them)
	Batch       int     // records per request, per tenant
	Concurrency int     // requests in flight
}

// flushEvery bounds how long a record waits in a partly filled batch, so
// that low rates still arrive within a fraction of a second.
const flushEvery = 200 * time.Millisecond

// Send generates records of g at cfg's pace and posts them, per tenant in
// batches, with cfg.Concurrency requests in flight. A request that fails
// (after the Poster's retries) or is answered with a status other than 2xx
// or 422 counts as failed and is passed to onFailure (not nil); the run goes
// on. It returns when every record is answered; its error is ctx's if ctx
// ended the run.
func (p *Poster) Send(ctx context.Context, g *Generator, cfg SendConfig, keep func(record.Record), onFailure func(error)) (Summary, error) {
	type job struct {
		tenant string
		lines  [][]byte
	}
	var (
		sum  Summary
		mu   sync.Mutex
		wg   sync.WaitGroup
		jobs = make(chan job)
	)
	for range max(cfg.Concurrency, 1) {
		wg.Go(func() {
			for j := range jobs {
				// A started request finishes even if ctx ends: its records count.
				res, err := p.Post(context.WithoutCancel(ctx), j.tenant, j.lines)
				if err == nil && res.Status >= 300 && res.Status != http.StatusUnprocessableEntity {
					err = fmt.Errorf("%d records for %s: HTTP %d", len(j.lines), j.tenant, res.Status)
				}
				mu.Lock()
				sum.Retries += res.Retries
				if err != nil {
					sum.FailedRequests++
				} else {
					sum.Accepted += res.Accepted
					sum.Rejected += res.Rejected
				}
				mu.Unlock()
				if err != nil {
					onFailure(err)
				}
			}
		})
	}
	pending := map[string][][]byte{}
	flush := func(tenant string) {
		if len(pending[tenant]) > 0 {
			jobs <- job{tenant, pending[tenant]}
			pending[tenant] = nil
		}
	}
	began := time.Now()
	lastFlush := began
	var err error
	for i := 0; cfg.Count <= 0 || i < cfg.Count; i++ {
		if err = pace(ctx, began, i, cfg.Rate); err != nil {
			break
		}
		rec, line, valid := g.NextWithLine()
		mu.Lock()
		sum.Generated++
		if !valid {
			sum.Malformed++
		}
		mu.Unlock()
		if valid && keep != nil {
			keep(rec)
		}
		pending[rec.Tenant] = append(pending[rec.Tenant], line)
		if len(pending[rec.Tenant]) >= max(cfg.Batch, 1) {
			flush(rec.Tenant)
		}
		if time.Since(lastFlush) > flushEvery {
			for t := range pending {
				flush(t)
			}
			lastFlush = time.Now()
		}
	}
	for t := range pending {
		flush(t)
	}
	close(jobs)
	wg.Wait()
	return sum, err
}

// pace waits until record i is due at rate records/s after began.
func pace(ctx context.Context, began time.Time, i int, rate float64) error {
	if rate <= 0 {
		return ctx.Err()
	}
	due := began.Add(time.Duration(float64(i) / rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return ctx.Err()
}
