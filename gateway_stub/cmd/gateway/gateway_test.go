package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/agentos/worker/gateway_stub/internal/testenv"
)

// stack is a nats-server, a worker and a gateway in front of them, all on loopback.
type stack struct {
	worker  *testenv.Worker
	gateway *Gateway
	url     string
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	natsSrv, err := testenv.StartNats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(natsSrv.Close)
	secret := testenv.NewCallbackSecret()
	worker, err := testenv.StartWorker(ctx, testenv.WorkerOptions{NatsURL: natsSrv.URL(), Env: map[string]string{
		"WORKER_DEMO_AGENTS":     "true",
		"WORKER_CALLBACK_SECRET": secret,
		"WORKER_CALLBACK_ALLOW":  "127.0.0.1/8,::1",
		"WORKER_LOG_LEVEL":       "warning",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker log tail:\n%s", worker.Tail(40))
		}
		worker.Close()
	})

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + listener.Addr().String()
	gw, err := NewGateway(ctx, Config{
		PublicURL:      url,
		WorkerURL:      worker.URL(),
		NatsURL:        natsSrv.URL(),
		CallbackSecret: secret,
		JobTimeout:     time.Minute,
		Log:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		_ = listener.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(listener) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		gw.Close()
	})
	return &stack{worker: worker, gateway: gw, url: url}
}

func postJSON(t *testing.T, url string, body any, want int, out any) {
	t.Helper()
	payload, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		t.Fatalf("POST %s: %d %s, want %d", url, resp.StatusCode, msg.String(), want)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// The demo's API end to end: create an agent, submit a job, watch its frames, get its callback.
func TestGatewayAPI(t *testing.T) {
	s := startStack(t)
	testenv.RequireStreaming(t, s.worker)

	var created struct {
		Agent struct{ ID string } `json:"agent"`
		Tier  string              `json:"tier"`
	}
	postJSON(t, s.url+"/api/agents", map[string]any{"type": "steps", "config": map[string]any{"steps": 3, "step_delay": "50ms"}}, http.StatusCreated, &created)
	if created.Agent.ID == "" || created.Tier != "primary" {
		t.Fatalf("created %+v", created)
	}
	var job struct{ ID, Stream, Result string }
	postJSON(t, s.url+"/api/jobs", map[string]any{"agent_id": created.Agent.ID, "input": "via the gateway"}, http.StatusAccepted, &job)

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.url, "http")+job.Stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var statuses []string
	for seq := int64(1); ; seq++ {
		var f struct {
			Seq    int64
			Status string
		}
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("after %v: %v", statuses, err)
		}
		if f.Seq != seq {
			t.Fatalf("frame seq %d, want %d", f.Seq, seq)
		}
		statuses = append(statuses, f.Status)
		if f.Status == "completed" {
			break
		}
	}

	resp, err := http.Get(s.url + job.Result + "?wait=30s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var result struct {
		TaskID    string `json:"task_id"`
		Status    string `json:"status"`
		WebhookID string `json:"webhook_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&result); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("result: %d, %v", resp.StatusCode, err)
	}
	if result.TaskID != job.ID || result.Status != "completed" || result.WebhookID == "" {
		t.Fatalf("result %+v", result)
	}
	if st := s.gateway.Receiver().Stats(); st.Stored != 1 || st.Rejected != 0 {
		t.Fatalf("receiver %+v", st)
	}
	t.Logf("frames %v; callback %+v", statuses, result)
}

// chromiumPath finds Debian's chromium (.ci/run installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatal("no chromium on PATH: install Debian's chromium package (apt-get install chromium), as .ci/run does")
	return ""
}

// headlessBrowser starts a headless Chromium for the test, closed when the test ends or after
// timeout.
func headlessBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancel() })
	return browser
}

// poll waits until the page's JavaScript expression expr is true, timeout at most.
func poll(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout))
}

// textOf is the text of the page's element #id.
func textOf(t *testing.T, browser context.Context, id string) string {
	t.Helper()
	v, err := chromedp.Run(browser, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return v
}

// A headless Chromium loads the demo page, creates an agent, submits a job, and sees its
// frames appear live, then the callback result.
func TestDemoPageInHeadlessChromium(t *testing.T) {
	s := startStack(t)
	testenv.RequireStreaming(t, s.worker)
	browser := headlessBrowser(t, 90*time.Second)

	const steps, delay = 6, 250 // ms per step: long enough to see frames arrive one by one
	config := fmt.Sprintf(`{"steps": %d, "step_delay": "%dms"}`, steps, delay)
	type row struct {
		Seq    string `json:"seq"`
		Status string `json:"status"`
		At     string `json:"at"`
	}
	text := func(id string) string { return textOf(t, browser, id) }
	if err := chromedp.Do(browser,
		chromedp.Navigate(s.url+"/"),
		chromedp.WaitVisible(chromedp.ID("create")),
		chromedp.SetValue(chromedp.ID("config"), config),
		chromedp.Click(chromedp.ID("create")),
		poll(`document.getElementById("agent").textContent.startsWith("created")`, 20*time.Second),
	); err != nil {
		t.Fatalf("create an agent on the page: %v (#agent: %q)", err, text("agent"))
	}
	agentText := text("agent")
	if err := chromedp.Do(browser,
		chromedp.Click(chromedp.ID("submit")),
		// Frames appear while the run is still going...
		poll(`document.querySelectorAll("#frames tr").length >= 2 && !document.getElementById("stream-status").dataset.closed`, 20*time.Second),
		// ...until the final one, and then the signed callback's result.
		poll(`document.getElementById("stream-status").dataset.closed === "1"`, 30*time.Second),
		poll(`document.getElementById("result-status").dataset.status === "completed"`, 30*time.Second),
	); err != nil {
		t.Fatalf("submit a job on the page: %v (#job: %q, #stream-status: %q, #result-status: %q)",
			err, text("job"), text("stream-status"), text("result-status"))
	}
	jobText, resultText := text("job"), text("result")
	rows, err := chromedp.Run(browser, chromedp.Evaluate[[]row](
		`Array.from(document.querySelectorAll("#frames tr")).map(r => ({seq: r.dataset.seq, status: r.dataset.status, at: r.dataset.at}))`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("GATEWAY_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "demo.png"), shot, 0o644)
	}

	if len(rows) < steps+2 {
		t.Fatalf("%d frames on the page, want at least %d: %+v", len(rows), steps+2, rows)
	}
	for i, r := range rows {
		if r.Seq != fmt.Sprint(i+1) {
			t.Fatalf("row %d has seq %s: %+v", i, r.Seq, rows)
		}
	}
	if rows[0].Status != "started" || rows[len(rows)-1].Status != "completed" {
		t.Fatalf("frames from %s to %s, want started to completed", rows[0].Status, rows[len(rows)-1].Status)
	}
	var first, last int
	fmt.Sscan(rows[0].At, &first)
	fmt.Sscan(rows[len(rows)-1].At, &last)
	if spread := last - first; spread < (steps-1)*delay/2 {
		t.Fatalf("frames arrived within %d ms: not live (want about %d ms)", spread, steps*delay)
	}
	jobID := strings.Fields(strings.TrimPrefix(jobText, "job "))[0]
	if !strings.Contains(resultText, jobID) || !strings.Contains(resultText, `"completed"`) {
		t.Fatalf("result panel %q, want job %s completed", resultText, jobID)
	}
	t.Logf("%s; %d frames over %d ms; callback shown for %s", agentText, len(rows), last-first, jobID)
}
