package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/agentos/worker/gateway_stub/internal/testenv"
	"github.com/agentos/worker/gateway_stub/tasks"
	"github.com/agentos/worker/gateway_stub/workerclient"
)

// otlpCollector is an OTLP/HTTP trace receiver (protobuf), keeping every span it is sent.
type otlpCollector struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// inTrace returns the collected spans of trace id.
func (c *otlpCollector) inTrace(id trace.TraceID) []*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range c.spans {
		if bytes.Equal(s.TraceId, id[:]) {
			out = append(out, s)
		}
	}
	return out
}

// One trace id from a Go span through the HTTP call, through a NATS job, into the worker's
// spans and back in the callback's traceparent.
func TestOneTraceFromGoThroughWorkerAndBack(t *testing.T) {
	_, _, secret := sharedEnv(t)
	// A NATS server and worker of this test's own, so no other worker takes the job and the
	// worker's spans all come here.
	natsSrv := startNats(t)
	collector := &otlpCollector{}
	otlp := httptest.NewServer(collector)
	defer otlp.Close()
	worker := startWorker(t, workerOptions(natsSrv.URL(), secret, map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	}))
	testenv.RequireTasks(t, worker)
	ctx := testContext(t, 2*time.Minute)

	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	defer func() { _ = tp.Shutdown(ctx) }()
	client, err := workerclient.New(workerclient.Options{BaseURL: worker.URL(), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	receiver, base := callbackServer(t, secret)
	nc, err := nats.Connect(natsSrv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	publisher, err := tasks.NewPublisher(js, tasks.Options{CallbackURL: callbackURL(base), TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}

	// The Go side: one span around an HTTP call and a NATS job.
	spanCtx, root := tp.Tracer("e2e").Start(ctx, "gateway request")
	traceID := root.SpanContext().TraceID()
	agent, err := client.CreateAgent(spanCtx, workerclient.AgentConfig{Type: "echo", Name: "traced"})
	if err != nil {
		t.Fatal(err)
	}
	exec, err := publisher.ExecuteAgentAsync(spanCtx, agent.ID, "trace me")
	if err != nil {
		t.Fatal(err)
	}
	root.End()

	// Back in the callback's traceparent.
	delivery, err := receiver.Wait(ctx, exec.ID)
	if err != nil {
		t.Fatal(err)
	}
	carrier := propagation.MapCarrier{"traceparent": delivery.TraceParent}
	back := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, carrier))
	if back.TraceID() != traceID {
		t.Fatalf("callback traceparent %q, want trace %s", delivery.TraceParent, traceID)
	}

	// The Go spans this test expects the worker's to hang under.
	var httpSpan, publishSpan trace.SpanID
	for _, s := range recorder.Ended() {
		switch {
		case s.SpanKind() == trace.SpanKindClient:
			httpSpan = s.SpanContext().SpanID()
		case s.SpanKind() == trace.SpanKindProducer:
			publishSpan = s.SpanContext().SpanID()
		}
	}
	if !httpSpan.IsValid() || !publishSpan.IsValid() {
		t.Fatalf("Go spans: %v", recorder.Ended())
	}

	// Into the worker's spans: the HTTP request's span is a child of the Go client span, and
	// the job's spans descend from the Go publish span.
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans := collector.inTrace(traceID)
		var underHTTP, underPublish bool
		for _, s := range spans {
			switch hex.EncodeToString(s.ParentSpanId) {
			case httpSpan.String():
				underHTTP = true
			case publishSpan.String():
				underPublish = true
			}
		}
		if underHTTP && underPublish {
			names := make([]string, 0, len(spans))
			for _, s := range spans {
				names = append(names, s.Name)
			}
			t.Logf("trace %s: worker spans %q; callback traceparent %s", traceID, names, delivery.TraceParent)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker spans in trace %s: %d (under the HTTP call: %v, under the publish: %v)", traceID, len(spans), underHTTP, underPublish)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
