package main

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/agentos/worker/gateway_stub/callbacks"
	"github.com/agentos/worker/gateway_stub/relay"
	"github.com/agentos/worker/gateway_stub/tasks"
	"github.com/agentos/worker/gateway_stub/workerclient"
)

//go:embed web
var webFiles embed.FS

// Config is the gateway's configuration (flags and GATEWAY_* variables in main).
type Config struct {
	Listen         string
	PublicURL      string // how the worker reaches this gateway: callbacks and stream_url
	WorkerURL      string
	SecondaryURL   string
	WorkerToken    string
	NatsURL        string
	CallbackSecret string
	JobTimeout     time.Duration // of each job, and each conversation turn
	Log            *slog.Logger
	// Breaker tunes the breaker in front of each worker (tests shorten it).
	Breaker workerclient.BreakerSettings
}

// Gateway wires the packages: worker clients and fallback, job publisher, callback receiver
// and stream relay.
type Gateway struct {
	cfg       Config
	log       *slog.Logger
	nc        *nats.Conn
	primary   *workerclient.Client
	fallback  *workerclient.Fallback
	publisher *tasks.Publisher
	receiver  *callbacks.Receiver
	relay     *relay.Server

	// ctx bounds the runs the gateway relays on its own (conversation turns); Close ends it
	// and waits for them.
	ctx  context.Context
	stop context.CancelFunc
	runs sync.WaitGroup
}

// NewGateway connects to NATS and builds the parts. Runs the gateway relays on its own end
// with ctx or Close.
func NewGateway(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	public := strings.TrimRight(cfg.PublicURL, "/")
	if !strings.HasPrefix(public, "http://") && !strings.HasPrefix(public, "https://") {
		return nil, fmt.Errorf("public URL must be http(s), got %q", cfg.PublicURL)
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 5 * time.Minute
	}
	g := &Gateway{cfg: cfg, log: cfg.Log}

	var err error
	clientOpts := workerclient.Options{BaseURL: cfg.WorkerURL, Token: cfg.WorkerToken, Breaker: cfg.Breaker}
	if g.primary, err = workerclient.New(clientOpts); err != nil {
		return nil, err
	}
	g.fallback = &workerclient.Fallback{Primary: g.primary}
	if cfg.SecondaryURL != "" {
		clientOpts.BaseURL = cfg.SecondaryURL
		secondary, err := workerclient.New(clientOpts)
		if err != nil {
			return nil, err
		}
		g.fallback.Secondary = secondary
	}

	g.receiver, err = callbacks.NewReceiver(callbacks.Options{
		Secret:        cfg.CallbackSecret,
		AllowUnsigned: cfg.CallbackSecret == "",
		OnDelivery: func(d callbacks.Delivery) {
			g.log.Info("callback", "task_id", d.TaskID, "status", d.Status, "webhook_id", d.WebhookID)
		},
	})
	if err != nil {
		return nil, err
	}
	g.relay = relay.NewServer(relay.NewHub(relay.Options{}), g.log)

	g.nc, err = nats.Connect(cfg.NatsURL, nats.Name("agentos-gateway"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", cfg.NatsURL, err)
	}
	js, err := jetstream.New(g.nc)
	if err != nil {
		g.nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	streamBase := "ws" + strings.TrimPrefix(public, "http")
	g.publisher, err = tasks.NewPublisher(js, tasks.Options{
		CallbackURL: func(id string) string { return public + "/execution-complete/" + id },
		StreamURL:   func(id string) string { return streamBase + "/internal/stream/" + id },
		Timeout:     cfg.JobTimeout,
	})
	if err != nil {
		g.nc.Close()
		return nil, err
	}
	g.ctx, g.stop = context.WithCancel(ctx)
	return g, nil
}

// Close ends the runs the gateway relays, waits for them, and disconnects from NATS.
func (g *Gateway) Close() {
	g.stop()
	g.runs.Wait()
	if g.nc != nil {
		g.nc.Close()
	}
}

// workerHeader is what the gateway sends the worker on connections of its own (Follow).
func (g *Gateway) workerHeader() http.Header {
	h := http.Header{}
	if g.cfg.WorkerToken != "" {
		h.Set("Authorization", "Bearer "+g.cfg.WorkerToken)
	}
	return h
}

// Receiver is the callback receiver (tests read its stats).
func (g *Gateway) Receiver() *callbacks.Receiver { return g.receiver }

// Handler is the gateway's HTTP surface, every route traced.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", demoPage)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("POST /api/agents", g.createAgent)
	mux.HandleFunc("POST /api/jobs", g.submitJob)
	mux.HandleFunc("GET /api/jobs/{id}/result", g.jobResult)
	mux.HandleFunc("POST /api/threads", g.createThread)
	mux.HandleFunc("GET /api/threads/{id}", g.getThread)
	mux.HandleFunc("POST /api/threads/{id}/turns", g.sendTurn)
	mux.HandleFunc("POST /api/threads/{id}/resume", g.resumeThread)
	mux.Handle("POST /execution-complete/{id}", g.receiver)
	mux.HandleFunc("GET /internal/stream/{id}", g.relay.IngestHandler)
	mux.HandleFunc("GET /stream", g.relay.StreamExecution)
	return otelhttp.NewHandler(mux, "gateway",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.Pattern }))
}
