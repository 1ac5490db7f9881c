// Command gateway is a small Go backend in front of the AgentOS worker pool, wiring the
// gateway_stub packages together: it creates agents over HTTP (with breaker, retries and the
// seed's fallback), publishes jobs on NATS, receives the signed callbacks, and relays each run's
// frames to browsers. GET / is a demo page doing all of that.
//
// Every flag has an environment variable:
//
//	-listen            GATEWAY_LISTEN            127.0.0.1:8090
//	-public-url        GATEWAY_PUBLIC_URL        URL the worker calls back (default http://<listen>)
//	-worker-url        GATEWAY_WORKER_URL        http://127.0.0.1:8080
//	-secondary-url     GATEWAY_SECONDARY_URL     a second worker for the fallback (optional)
//	-worker-token      GATEWAY_WORKER_TOKEN      bearer token for the worker (optional)
//	-nats-url          GATEWAY_NATS_URL          nats://127.0.0.1:4222
//	-callback-secret   GATEWAY_CALLBACK_SECRET   the worker's WORKER_CALLBACK_SECRET (whsec_...)
//	-job-timeout       GATEWAY_JOB_TIMEOUT       5m
//
// With no callback secret the gateway accepts unsigned callbacks, which is only fit for a demo.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func run() error {
	var cfg Config
	flag.StringVar(&cfg.Listen, "listen", env("GATEWAY_LISTEN", "127.0.0.1:8090"), "address to listen on")
	flag.StringVar(&cfg.PublicURL, "public-url", env("GATEWAY_PUBLIC_URL", ""), "URL the worker reaches this gateway at (default http://<listen>)")
	flag.StringVar(&cfg.WorkerURL, "worker-url", env("GATEWAY_WORKER_URL", "http://127.0.0.1:8080"), "primary worker")
	flag.StringVar(&cfg.SecondaryURL, "secondary-url", env("GATEWAY_SECONDARY_URL", ""), "secondary worker (optional)")
	flag.StringVar(&cfg.WorkerToken, "worker-token", env("GATEWAY_WORKER_TOKEN", ""), "bearer token for the workers")
	flag.StringVar(&cfg.NatsURL, "nats-url", env("GATEWAY_NATS_URL", "nats://127.0.0.1:4222"), "NATS server of the pool")
	flag.StringVar(&cfg.CallbackSecret, "callback-secret", env("GATEWAY_CALLBACK_SECRET", ""), "Standard Webhooks secret (whsec_...)")
	timeout := flag.String("job-timeout", env("GATEWAY_JOB_TIMEOUT", "5m"), "timeout of each job")
	flag.Parse()
	var err error
	if cfg.JobTimeout, err = time.ParseDuration(*timeout); err != nil {
		return fmt.Errorf("-job-timeout: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg.Log = log

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	shutdownTracing, err := setupTracing(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.Background()) }()

	listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + listener.Addr().String()
	}
	gw, err := NewGateway(ctx, cfg)
	if err != nil {
		_ = listener.Close()
		return err
	}
	defer gw.Close()

	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(listener) }()
	// A line for people and scripts, like the worker's.
	fmt.Fprintf(os.Stderr, "agentos-gateway listening on http://%s\n", listener.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
