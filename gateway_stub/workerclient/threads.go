package workerclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Thread statuses (ThreadState.Status).
const (
	ThreadIdle        = "idle"
	ThreadBusy        = "busy"
	ThreadInterrupted = "interrupted"
)

var threadIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// ValidThreadID reports whether id is a thread id the worker accepts (CONTRACT §6: 1 to 128
// characters of A-Z a-z 0-9 _ . -). The thread calls check it before sending anything.
func ValidThreadID(id string) bool { return threadIDPattern.MatchString(id) }

func checkThreadID(id string) error {
	if !ValidThreadID(id) {
		return fmt.Errorf("%w %q: want 1 to 128 characters of A-Z a-z 0-9 _ . -", ErrInvalidThreadID, id)
	}
	return nil
}

// CreateThreadRequest is the body of POST /v1/threads. Both fields are optional.
type CreateThreadRequest struct {
	// ThreadID names the thread; empty lets the worker choose one.
	ThreadID string `json:"thread_id,omitempty"`
	// Metadata is the caller's, kept with the thread (a user id, a title...).
	Metadata map[string]any `json:"metadata,omitempty"`
}

// Thread is a thread as created.
type Thread struct {
	ThreadID  string         `json:"thread_id"`
	CreatedAt time.Time      `json:"created_at"`
	Metadata  map[string]any `json:"metadata"`
}

// ThreadState is a thread now: GET /v1/threads/{id}.
type ThreadState struct {
	ThreadID string `json:"thread_id"`
	// Status is ThreadIdle, ThreadBusy (a run holds it) or ThreadInterrupted (waiting for
	// Resume).
	Status    string         `json:"status"`
	Values    ThreadValues   `json:"values"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	// CheckpointID is the thread's newest checkpoint, empty for a thread with no run yet.
	CheckpointID string `json:"checkpoint_id,omitempty"`
	// Interrupt is the question of an interrupted thread, when the worker gives it alone;
	// Interrupts lists every pending one with its id. Question reads either.
	Interrupt  json.RawMessage `json:"interrupt,omitempty"`
	Interrupts []Interrupt     `json:"interrupts,omitempty"`
}

// Question is what an interrupted thread asks (nil when it asks nothing).
func (s *ThreadState) Question() json.RawMessage {
	if len(s.Interrupt) > 0 {
		return s.Interrupt
	}
	if len(s.Interrupts) > 0 {
		return s.Interrupts[0].Value
	}
	return nil
}

// Interrupt is a question a run stopped on.
type Interrupt struct {
	ID    string          `json:"id,omitempty"`
	Value json.RawMessage `json:"value"`
}

// ThreadValues are a thread's state values: the conversation's messages, in order, and
// whatever other channels the agent's graph keeps (all of them in Raw).
type ThreadValues struct {
	Messages []Message `json:"messages"`
	// Raw is the values object as the worker sent it (set when decoded, not encoded).
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the messages and keeps the whole object in Raw.
func (v *ThreadValues) UnmarshalJSON(data []byte) error {
	type plain ThreadValues
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("thread values: %w", err)
	}
	*v = ThreadValues(p)
	v.Raw = append(json.RawMessage(nil), data...)
	return nil
}

// ThreadCheckpoint is one entry of a thread's history.
type ThreadCheckpoint struct {
	CheckpointID       string         `json:"checkpoint_id"`
	ParentCheckpointID string         `json:"parent_checkpoint_id,omitempty"`
	CreatedAt          time.Time      `json:"created_at"`
	Metadata           map[string]any `json:"metadata,omitempty"`
	Values             ThreadValues   `json:"values"`
	Interrupts         []Interrupt    `json:"interrupts,omitempty"`
}

// HistoryOptions page through a thread's history. Zero fields ask for the worker's default.
type HistoryOptions struct {
	// Limit is the most checkpoints to return.
	Limit int
	// Before returns only checkpoints older than this checkpoint id.
	Before string
}

// ResumeRequest is the body of POST /v1/threads/{id}/resume.
type ResumeRequest struct {
	// Resume is the answer to the thread's question: any JSON value, handed to the graph as
	// the value of its interrupt() call.
	Resume any `json:"resume"`
	// AgentID names the agent to continue with, for a worker that needs it told; the
	// contract's worker knows it from the thread.
	AgentID string `json:"agent_id,omitempty"`
	// Timeout is the resumed run's deadline; zero means the worker's default (30 s).
	Timeout time.Duration `json:"timeout,omitempty"`
}

// CreateThread creates a conversation thread (POST /v1/threads, 201). A run may also name a
// new thread id itself, which creates the thread.
func (c *Client) CreateThread(ctx context.Context, req CreateThreadRequest) (*Thread, error) {
	if req.ThreadID != "" {
		if err := checkThreadID(req.ThreadID); err != nil {
			return nil, err
		}
	}
	var thread Thread
	if err := c.do(ctx, http.MethodPost, "/v1/threads", req, http.StatusCreated, &thread); err != nil {
		return nil, err // its errors match by code alone (ErrThreadExists); no thread to miss
	}
	return &thread, nil
}

// GetThread reads a thread now: its status and messages (ErrThreadNotFound if unknown).
func (c *Client) GetThread(ctx context.Context, threadID string) (*ThreadState, error) {
	if err := checkThreadID(threadID); err != nil {
		return nil, err
	}
	var state ThreadState
	if err := c.do(ctx, http.MethodGet, threadPath(threadID), nil, http.StatusOK, &state); err != nil {
		return nil, threadError(err, nil)
	}
	return &state, nil
}

// ThreadHistory lists a thread's checkpoints, newest first.
func (c *Client) ThreadHistory(ctx context.Context, threadID string, opts HistoryOptions) ([]ThreadCheckpoint, error) {
	if err := checkThreadID(threadID); err != nil {
		return nil, err
	}
	query := url.Values{}
	if opts.Limit > 0 {
		query.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Before != "" {
		query.Set("before", opts.Before)
	}
	path := threadPath(threadID) + "/history"
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, path, nil, http.StatusOK, &raw); err != nil {
		return nil, threadError(err, nil)
	}
	return decodeHistory(raw)
}

// decodeHistory reads the history as a list, or as an object holding the list under
// "checkpoints" or "history": the contract says what the entries are, not how they are
// wrapped, and a reader should not break on either.
func decodeHistory(raw json.RawMessage) ([]ThreadCheckpoint, error) {
	var list []ThreadCheckpoint
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fmt.Errorf("decode thread history: %w", err)
		}
		return list, nil
	}
	var wrapped struct {
		Checkpoints []ThreadCheckpoint `json:"checkpoints"`
		History     []ThreadCheckpoint `json:"history"`
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return nil, fmt.Errorf("decode thread history: %w", err)
	}
	if wrapped.Checkpoints != nil {
		return wrapped.Checkpoints, nil
	}
	return wrapped.History, nil
}

// DeleteThread deletes a thread and all its checkpoints (204). A thread a run holds answers
// ErrThreadBusy.
func (c *Client) DeleteThread(ctx context.Context, threadID string) error {
	if err := checkThreadID(threadID); err != nil {
		return err
	}
	return threadError(c.do(ctx, http.MethodDelete, threadPath(threadID), nil, http.StatusNoContent, nil), nil)
}

// Resume answers an interrupted thread's question and continues its run, on whichever worker
// answers. The result is an invocation's: completed, or interrupted again with a new
// question. A thread that is not interrupted gives ErrNotInterrupted; one a run holds,
// ErrThreadBusy.
func (c *Client) Resume(ctx context.Context, threadID string, req ResumeRequest) (*InvokeResult, error) {
	if err := checkThreadID(threadID); err != nil {
		return nil, err
	}
	ctx, cancel := runDeadline(ctx, req.Timeout)
	defer cancel()
	var res InvokeResult
	if err := c.do(ctx, http.MethodPost, threadPath(threadID)+"/resume", req, http.StatusOK, &res); err != nil {
		return nil, threadError(err, ErrNotInterrupted)
	}
	return &res, nil
}

func threadPath(threadID string) string { return "/v1/threads/" + url.PathEscape(threadID) }

// threadError gives a thread route's error answer its sentinel when its code alone does not:
// any 404 of a route naming a thread means that thread, and on Resume a 409 that is not thread_busy means
// the thread is not interrupted (conflict).
func threadError(err error, conflict error) error {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch {
	case apiErr.StatusCode == http.StatusNotFound && !errors.Is(err, ErrThreadNotFound):
		return fmt.Errorf("%w: %w", ErrThreadNotFound, err)
	case conflict != nil && apiErr.StatusCode == http.StatusConflict &&
		!errors.Is(err, ErrThreadBusy) && !errors.Is(err, conflict):
		return fmt.Errorf("%w: %w", conflict, err)
	}
	return err
}
