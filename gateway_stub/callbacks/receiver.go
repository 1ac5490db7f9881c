package callbacks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Options configure a Receiver.
type Options struct {
	// Secret is the Standard Webhooks secret ("whsec_" + base64), the worker's
	// WORKER_CALLBACK_SECRET. Required unless AllowUnsigned.
	Secret string
	// AllowUnsigned accepts callbacks without a signature, from a worker with no secret
	// configured. Only for local demos: anyone who can reach the receiver can forge results.
	AllowUnsigned bool
	// Retention is how long results and seen webhook ids are kept. Default 24 h, the job
	// stream's own retention, past which the worker would not retry a callback anyway.
	Retention time.Duration
	// MaxEntries bounds the results (and, separately, the seen ids) kept. Default 100,000.
	MaxEntries int
	// MaxBodyBytes bounds a callback body. Default 1 MiB, the worker's own request limit.
	MaxBodyBytes int64
	// OnDelivery, when set, is called once per stored result (not for duplicates).
	OnDelivery func(Delivery)
}

// Stats count what the receiver saw.
type Stats struct {
	// Verified callbacks: signature (or, with AllowUnsigned, headers) and timestamp accepted.
	Verified uint64
	// Rejected callbacks: bad signature, stale timestamp, bad body; answered 4xx.
	Rejected uint64
	// Duplicates: a webhook-id already seen (a retry after a lost answer), answered 2xx and
	// not stored again.
	Duplicates uint64
	// Replays: a new webhook-id for a task whose result is already stored (the worker
	// re-delivering a stored result); the first result is kept.
	Replays uint64
	// Stored results, one per task.
	Stored uint64
}

// Receiver is the callback endpoint. Mount it on a pattern with an {id} wildcard, e.g.
// "POST /execution-complete/{id}", and the id must match the body's task_id.
type Receiver struct {
	verifier      *standardwebhooks.Webhook
	allowUnsigned bool
	maxBody       int64
	onDelivery    func(Delivery)

	mu      sync.Mutex // guards seen+results check-and-add, and waiters
	seen    *expirable.LRU[string, struct{}]
	results *expirable.LRU[string, Delivery]
	waiters map[string][]chan Delivery

	verified, rejected, duplicates, replays, stored atomic.Uint64
}

// NewReceiver builds a receiver.
func NewReceiver(opts Options) (*Receiver, error) {
	r := &Receiver{allowUnsigned: opts.AllowUnsigned, onDelivery: opts.OnDelivery, waiters: map[string][]chan Delivery{}}
	if opts.Secret != "" {
		wh, err := standardwebhooks.NewWebhook(opts.Secret)
		if err != nil {
			return nil, fmt.Errorf("callbacks: bad secret: %w", err)
		}
		r.verifier = wh
	} else if !opts.AllowUnsigned {
		return nil, errors.New("callbacks: Options.Secret is required (or AllowUnsigned for a demo)")
	}
	retention := opts.Retention
	if retention <= 0 {
		retention = 24 * time.Hour
	}
	size := opts.MaxEntries
	if size <= 0 {
		size = 100_000
	}
	r.maxBody = opts.MaxBodyBytes
	if r.maxBody <= 0 {
		r.maxBody = 1 << 20
	}
	r.seen = expirable.NewLRU[string, struct{}](size, nil, retention)
	r.results = expirable.NewLRU[string, Delivery](size, nil, retention)
	return r, nil
}

// ServeHTTP verifies, deduplicates and stores one callback. Answers: 204 stored; 200 duplicate
// or replay (the worker stops retrying); 401 bad signature or stale timestamp, 400 bad body,
// 413 too large: permanent 4xx, so the worker dead-letters rather than retrying forever.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.maxBody))
	if err != nil {
		r.reject(w, http.StatusRequestEntityTooLarge, "body_too_large", err)
		return
	}
	if err := r.verify(body, req.Header); err != nil {
		r.reject(w, http.StatusUnauthorized, "bad_signature", err)
		return
	}
	var result Result
	if err := json.Unmarshal(body, &result); err != nil || result.TaskID == "" || result.Status == "" {
		r.reject(w, http.StatusBadRequest, "bad_body", fmt.Errorf("want a JSON result with task_id and status: %v", err))
		return
	}
	if id := req.PathValue("id"); id != "" && id != result.TaskID {
		r.reject(w, http.StatusBadRequest, "task_mismatch", fmt.Errorf("path id %q, body task_id %q", id, result.TaskID))
		return
	}
	r.verified.Add(1)
	delivery := Delivery{
		Result:      result,
		WebhookID:   req.Header.Get(standardwebhooks.HeaderWebhookID),
		TraceParent: req.Header.Get("traceparent"),
		ReceivedAt:  time.Now(),
	}
	switch r.record(delivery) {
	case outcomeDuplicate:
		r.duplicates.Add(1)
		w.WriteHeader(http.StatusOK)
	case outcomeReplay:
		r.replays.Add(1)
		w.WriteHeader(http.StatusOK)
	default:
		r.stored.Add(1)
		if r.onDelivery != nil {
			r.onDelivery(delivery)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (r *Receiver) verify(body []byte, h http.Header) error {
	if r.verifier != nil && (h.Get(standardwebhooks.HeaderWebhookSignature) != "" || !r.allowUnsigned) {
		if err := r.verifier.Verify(body, h); err != nil {
			return fmt.Errorf("verify callback: %w", err)
		}
		return nil
	}
	if h.Get(standardwebhooks.HeaderWebhookID) == "" {
		return errors.New("verify callback: no webhook-id")
	}
	return nil
}

type outcome int

const (
	outcomeStored outcome = iota
	outcomeDuplicate
	outcomeReplay
)

func (r *Receiver) record(d Delivery) outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.WebhookID != "" {
		if r.seen.Contains(d.WebhookID) {
			return outcomeDuplicate
		}
		r.seen.Add(d.WebhookID, struct{}{})
	}
	if r.results.Contains(d.TaskID) {
		return outcomeReplay
	}
	r.results.Add(d.TaskID, d)
	for _, ch := range r.waiters[d.TaskID] {
		ch <- d // buffered, one slot each
	}
	delete(r.waiters, d.TaskID)
	return outcomeStored
}

func (r *Receiver) reject(w http.ResponseWriter, status int, code string, err error) {
	r.rejected.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": err.Error()}})
}

// Result returns the stored result of task id.
func (r *Receiver) Result(id string) (Delivery, bool) {
	return r.results.Get(id)
}

// Wait blocks until task id's result arrives (or is already there) or ctx ends.
func (r *Receiver) Wait(ctx context.Context, id string) (Delivery, error) {
	r.mu.Lock()
	if d, ok := r.results.Get(id); ok {
		r.mu.Unlock()
		return d, nil
	}
	ch := make(chan Delivery, 1)
	r.waiters[id] = append(r.waiters[id], ch)
	r.mu.Unlock()
	select {
	case d := <-ch:
		return d, nil
	case <-ctx.Done():
		r.mu.Lock()
		waiting := r.waiters[id]
		for i, c := range waiting {
			if c == ch {
				r.waiters[id] = append(waiting[:i], waiting[i+1:]...)
				break
			}
		}
		if len(r.waiters[id]) == 0 {
			delete(r.waiters, id)
		}
		r.mu.Unlock()
		select { // the result may have raced the cancellation
		case d := <-ch:
			return d, nil
		default:
		}
		return Delivery{}, fmt.Errorf("wait for task %s: %w", id, ctx.Err())
	}
}

// Stats is a snapshot of the counters.
func (r *Receiver) Stats() Stats {
	return Stats{
		Verified:   r.verified.Load(),
		Rejected:   r.rejected.Load(),
		Duplicates: r.duplicates.Load(),
		Replays:    r.replays.Load(),
		Stored:     r.stored.Load(),
	}
}
