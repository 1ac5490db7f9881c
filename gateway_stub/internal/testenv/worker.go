package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

var listening = regexp.MustCompile(`agentos-worker listening on (http://\S+)`)

// WorkerOptions configure a worker process. Env entries are WORKER_* (or OTEL_*) variables added
// to the test's environment.
type WorkerOptions struct {
	// NatsURL is the NATS server the worker joins (required: tests never use the embedded one,
	// so several workers can share one server).
	NatsURL string
	// Port is the HTTP port; 0 picks a free one once, kept across restarts.
	Port int
	// Env holds extra environment variables.
	Env map[string]string
}

// Worker is `python -m worker` in a subprocess with its log lines kept.
type Worker struct {
	Port int
	opts WorkerOptions
	py   string
	root string
	dir  string

	mu    sync.Mutex
	cmd   *exec.Cmd
	lines []string
}

// StartWorker starts a worker and waits until it says where it listens.
func StartWorker(ctx context.Context, opts WorkerOptions) (*Worker, error) {
	if opts.NatsURL == "" {
		return nil, errors.New("testenv: WorkerOptions.NatsURL is required")
	}
	py, err := venvExecutable("python")
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	if opts.Port == 0 {
		if opts.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "gateway-worker-")
	if err != nil {
		return nil, fmt.Errorf("worker state dir: %w", err)
	}
	w := &Worker{Port: opts.Port, opts: opts, py: py, root: root, dir: dir}
	if err := w.Start(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return w, nil
}

// URL is the worker's HTTP base URL.
func (w *Worker) URL() string { return "http://127.0.0.1:" + strconv.Itoa(w.Port) }

// Start (re)starts the worker process on its port and waits until it listens (30 s at most).
func (w *Worker) Start(ctx context.Context) error {
	cmd := exec.Command(w.py, "-m", "worker",
		"--http-port", strconv.Itoa(w.Port),
		"--nats-url", w.opts.NatsURL,
		"--state-dir", w.dir)
	cmd.Dir = w.root
	cmd.Env = os.Environ()
	for k, v := range w.opts.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	dieWithParent(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("worker stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	w.mu.Lock()
	w.cmd = cmd
	w.mu.Unlock()
	ready := make(chan struct{})
	go w.read(stderr, ready)

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		killProcess(cmd)
		return fmt.Errorf("worker did not start: %w\n%s", ctx.Err(), w.Tail(40))
	}
}

func (w *Worker) read(r io.Reader, ready chan<- struct{}) {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 64*1024), 1<<20)
	signalled := false
	for scanner.Scan() {
		line := scanner.Text()
		w.mu.Lock()
		w.lines = append(w.lines, line)
		if len(w.lines) > 5000 { // bounded: a long test keeps only the recent lines
			w.lines = append([]string(nil), w.lines[len(w.lines)-4000:]...)
		}
		w.mu.Unlock()
		if !signalled && listening.MatchString(line) {
			signalled = true
			close(ready)
		}
	}
}

// Kill sends SIGKILL: the worker gets no chance to clean up.
func (w *Worker) Kill() {
	w.mu.Lock()
	cmd := w.cmd
	w.cmd = nil
	w.mu.Unlock()
	killProcess(cmd)
}

// Stop sends SIGTERM and waits for the drain (20 s at most).
func (w *Worker) Stop() {
	w.mu.Lock()
	cmd := w.cmd
	w.cmd = nil
	w.mu.Unlock()
	stopProcess(cmd, 20*time.Second)
}

// Close stops the worker and removes its state directory.
func (w *Worker) Close() {
	w.Stop()
	_ = os.RemoveAll(w.dir)
}

// Tail is the last n log lines, for failure messages.
func (w *Worker) Tail(n int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := max(len(w.lines)-n, 0)
	return strings.Join(w.lines[start:], "\n")
}

// Paths lists the paths of the worker's /openapi.json.
func (w *Worker) Paths(ctx context.Context) (map[string]json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.URL()+"/openapi.json", nil)
	if err != nil {
		return nil, fmt.Errorf("openapi request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get openapi: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode openapi: %w", err)
	}
	return doc.Paths, nil
}

// NewCallbackSecret is a fresh Standard Webhooks secret, "whsec_" and 32 random bytes in base64.
func NewCallbackSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails on supported platforms (Go 1.24+)
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}
