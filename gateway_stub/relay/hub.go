package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrTooManyRuns is returned when the Hub tracks Options.MaxRuns runs already.
var ErrTooManyRuns = errors.New("relay: too many runs")

// Options bound a Hub's memory. Zero fields take the defaults noted.
type Options struct {
	// MaxFramesPerRun kept for one run; later non-final frames are dropped (the final frame is
	// always kept). Default 10,000.
	MaxFramesPerRun int
	// MaxRuns tracked at once. Default 10,000.
	MaxRuns int
	// Retention of a run after its last frame (or, with no frame, after a reader asked for
	// it). Default 10 minutes.
	Retention time.Duration
}

// Hub holds the frames of recent runs and hands them to readers.
type Hub struct {
	opts Options

	mu        sync.Mutex
	runs      map[string]*run
	lastSweep time.Time
}

type run struct {
	frames  []Frame
	lastSeq int64
	dropped int
	done    bool
	changed chan struct{} // closed and replaced on every change: a broadcast to readers
	touched time.Time
	readers int // runs being read are never swept
}

// NewHub builds an empty Hub.
func NewHub(opts Options) *Hub {
	if opts.MaxFramesPerRun <= 0 {
		opts.MaxFramesPerRun = 10_000
	}
	if opts.MaxRuns <= 0 {
		opts.MaxRuns = 10_000
	}
	if opts.Retention <= 0 {
		opts.Retention = 10 * time.Minute
	}
	return &Hub{opts: opts, runs: map[string]*run{}}
}

// runLocked returns the run of id, creating it; h.mu must be held.
func (h *Hub) runLocked(id string, now time.Time) (*run, error) {
	if now.Sub(h.lastSweep) > h.opts.Retention/10 {
		h.lastSweep = now
		for key, r := range h.runs {
			if r.readers == 0 && now.Sub(r.touched) > h.opts.Retention {
				delete(h.runs, key)
			}
		}
	}
	r, ok := h.runs[id]
	if !ok {
		if len(h.runs) >= h.opts.MaxRuns {
			return nil, ErrTooManyRuns
		}
		r = &run{changed: make(chan struct{})}
		h.runs[id] = r
	}
	r.touched = now
	return r, nil
}

// Publish adds frame f to run id. It returns false when the frame was already there (a resend
// after the pusher reconnected), came after the final frame, or did not fit.
func (h *Hub) Publish(id string, f Frame) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, err := h.runLocked(id, time.Now())
	if err != nil {
		return false, err
	}
	if r.done {
		return false, nil
	}
	if f.Seq == 0 {
		f = f.withSeq(r.lastSeq + 1)
	}
	if f.Seq <= r.lastSeq {
		return false, nil
	}
	if len(r.frames) >= h.opts.MaxFramesPerRun && !f.Terminal() {
		r.dropped++
		return false, nil
	}
	r.frames = append(r.frames, f)
	r.lastSeq = f.Seq
	r.done = f.Terminal()
	close(r.changed)
	r.changed = make(chan struct{})
	return true, nil
}

// Frames calls fn with run id's frames whose seq is at least fromSeq, in order: the ones held,
// then each new one as it arrives, until the final frame, an error from fn, or ctx's end.
// fn is called from the caller's goroutine, one frame at a time.
func (h *Hub) Frames(ctx context.Context, id string, fromSeq int64, fn func(Frame) error) error {
	h.mu.Lock()
	r, err := h.runLocked(id, time.Now())
	if err != nil {
		h.mu.Unlock()
		return err
	}
	r.readers++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		r.readers--
		r.touched = time.Now()
		h.mu.Unlock()
	}()

	next := 0 // index in the run's frames
	for {
		h.mu.Lock()
		batch := r.frames[next:] // frames is append-only: this view stays valid unlocked
		next = len(r.frames)
		done, changed := r.done, r.changed
		h.mu.Unlock()

		for _, f := range batch {
			if f.Seq < fromSeq {
				continue
			}
			if err := fn(f); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("frames of %s: %w", id, ctx.Err())
		}
	}
}

// Snapshot returns the frames held for run id (a copy), and whether the run has ended.
func (h *Hub) Snapshot(id string) ([]Frame, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.runs[id]
	if !ok {
		return nil, false
	}
	return append([]Frame(nil), r.frames...), r.done
}
