package workerclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Options configure a Client. Only BaseURL is required.
type Options struct {
	// BaseURL of the worker (or the pool's load balancer), e.g. "http://ai-worker:8080".
	BaseURL string
	// Token is sent as "Authorization: Bearer <token>" when set (WORKER_AUTH_TOKENS).
	Token string
	// Timeout bounds each call whose context has no deadline of its own. Default 30 s, the
	// contract's default invoke deadline.
	Timeout time.Duration
	// Breaker tunes the circuit breaker in front of this worker.
	Breaker BreakerSettings
	// Retry tunes retries of idempotent calls.
	Retry RetrySettings
	// Transport is the base transport. Default: a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// TracerProvider defaults to OpenTelemetry's global one; Propagator to W3C Trace Context,
	// the contract's traceparent. Every attempt is a client span and carries traceparent.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Client calls one worker. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	token   string
	timeout time.Duration
	http    *http.Client
	breaker *breakerTransport
}

// New builds a client for opts.BaseURL.
func New(opts Options) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("workerclient: bad BaseURL %q", opts.BaseURL)
	}
	transport := opts.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	var otelOpts []otelhttp.Option
	if opts.TracerProvider != nil {
		otelOpts = append(otelOpts, otelhttp.WithTracerProvider(opts.TracerProvider))
	}
	propagator := opts.Propagator
	if propagator == nil {
		propagator = propagation.TraceContext{}
	}
	otelOpts = append(otelOpts, otelhttp.WithPropagators(propagator))
	// Innermost first: each attempt is its own client span, the breaker sees each attempt, and
	// retries stop as soon as the breaker opens.
	traced := otelhttp.NewTransport(transport, otelOpts...)
	breaker := newBreakerTransport("worker "+base.Host, opts.Breaker, traced)
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &Client{
		base:    base,
		token:   opts.Token,
		timeout: timeout,
		http:    &http.Client{Transport: newRetryTransport(opts.Retry, breaker)},
		breaker: breaker,
	}, nil
}

// BaseURL is the worker this client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// BreakerState is the state of this worker's circuit breaker.
func (c *Client) BreakerState() gobreaker.State { return c.breaker.State() }

// CreateAgent creates an agent with the seed's call, POST /create-agent.
func (c *Client) CreateAgent(ctx context.Context, config AgentConfig) (*Agent, error) {
	var agent Agent
	if err := c.do(ctx, http.MethodPost, "/create-agent", config, http.StatusCreated, &agent); err != nil {
		return nil, err
	}
	return &agent, nil
}

// GetAgent reads an agent.
func (c *Client) GetAgent(ctx context.Context, id string) (*Agent, error) {
	var agent Agent
	if err := c.do(ctx, http.MethodGet, "/v1/agents/"+url.PathEscape(id), nil, http.StatusOK, &agent); err != nil {
		return nil, err
	}
	return &agent, nil
}

// ListAgents lists the pool's agents.
func (c *Client) ListAgents(ctx context.Context) ([]Agent, error) {
	var list struct {
		Agents []Agent `json:"agents"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/agents", nil, http.StatusOK, &list); err != nil {
		return nil, err
	}
	return list.Agents, nil
}

// DeleteAgent deletes an agent.
func (c *Client) DeleteAgent(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/agents/"+url.PathEscape(id), nil, http.StatusNoContent, nil)
}

// Invoke runs an agent and waits for its output. The worker answers 504 past req.Timeout.
// With req.ThreadID the run continues that thread; it may end interrupted (res.Interrupted),
// and a thread another run holds gives ErrThreadBusy.
func (c *Client) Invoke(ctx context.Context, agentID string, req InvokeRequest) (*InvokeResult, error) {
	if req.ThreadID != "" {
		if err := checkThreadID(req.ThreadID); err != nil {
			return nil, err
		}
	}
	ctx, cancel := runDeadline(ctx, req.Timeout)
	defer cancel()
	var res InvokeResult
	path := "/v1/agents/" + url.PathEscape(agentID) + "/invoke"
	if err := c.do(ctx, http.MethodPost, path, req, http.StatusOK, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// runDeadline bounds a run's call by the run's own timeout plus room for the worker's deadline
// to answer 504 before ours cuts the call; with no timeout, ctx is left as it is.
func runDeadline(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout+5*time.Second)
}

// SubmitTask submits a long job over HTTP instead of NATS (POST /v1/tasks, 202). task is a
// tasks.TaskMessage, the same body as published on agent.execute.
func (c *Client) SubmitTask(ctx context.Context, task any) (*TaskAccepted, error) {
	var accepted TaskAccepted
	if err := c.do(ctx, http.MethodPost, "/v1/tasks", task, http.StatusAccepted, &accepted); err != nil {
		return nil, err
	}
	return &accepted, nil
}

// GetTask reads a job's state.
func (c *Client) GetTask(ctx context.Context, id string) (*Task, error) {
	var task Task
	if err := c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil, http.StatusOK, &task); err != nil {
		return nil, err
	}
	return &task, nil
}

// CancelTask asks the pool to stop a job (POST /v1/tasks/{id}/cancel, 202).
func (c *Client) CancelTask(ctx context.Context, id string) error {
	path := "/v1/tasks/" + url.PathEscape(id) + "/cancel"
	return c.do(ctx, http.MethodPost, path, nil, http.StatusAccepted, nil)
}

// Ready asks /readyz. A worker that is not ready answers 503, returned as an *APIError.
func (c *Client) Ready(ctx context.Context) (*Readiness, error) {
	var r Readiness
	if err := c.do(ctx, http.MethodGet, "/readyz", nil, http.StatusOK, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// withDefaultTimeout bounds ctx by the client's Timeout when it has no deadline of its own.
func (c *Client) withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

// send sends one call with a JSON body (none when body is nil) and returns the answer, whatever
// its status.
func (c *Client) send(ctx context.Context, method, path string, body any, accept string) (*http.Response, error) {
	var reader io.Reader
	if body != nil {
		payload, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		reader = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, reader)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", accept)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// do sends one call and decodes a `want` answer into out, or an error answer into *APIError.
func (c *Client) do(ctx context.Context, method, path string, body any, want int, out any) error {
	ctx, cancel := c.withDefaultTimeout(ctx)
	defer cancel()
	resp, err := c.send(ctx, method, path, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	apiErr := &APIError{StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
	var body struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err := json.Unmarshal(raw, &body); err != nil || body.Error.Code == "" {
		apiErr.Code = "unexpected_status"
		apiErr.Message = strings.TrimSpace(string(raw))
		apiErr.RequestID = resp.Header.Get("X-Request-ID")
		return apiErr
	}
	apiErr.Code = body.Error.Code
	apiErr.Message = body.Error.Message
	apiErr.RequestID = body.Error.RequestID
	return apiErr
}

// IsUnavailable reports whether err means the worker could not be used at all (connection
// refused, timeout, open breaker, overload): the errors a fallback moves on from. A 4xx answer
// is not: the next worker would give the same one.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= 500 || apiErr.StatusCode == http.StatusTooManyRequests
	}
	return true
}
