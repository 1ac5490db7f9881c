package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Options configure a Publisher. CallbackURL is required.
type Options struct {
	// CallbackURL gives the URL the worker POSTs a job's result to, e.g.
	// func(id string) string { return "http://agent-engine/execution-complete/" + id }.
	CallbackURL func(id string) string
	// StreamURL, when set, gives the WebSocket URL the worker pushes the job's frames to.
	StreamURL func(id string) string
	// Timeout of each job. Default 5 minutes, as in the seed.
	Timeout time.Duration
	// TracerProvider defaults to OpenTelemetry's global one; Propagator to W3C Trace Context,
	// the contract's traceparent (OpenTelemetry's global propagator is a no-op until set).
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Publisher publishes jobs on agent.execute through JetStream.
type Publisher struct {
	js         jetstream.JetStream
	opts       Options
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// NewPublisher publishes through js (jetstream.New(nc)).
func NewPublisher(js jetstream.JetStream, opts Options) (*Publisher, error) {
	if js == nil {
		return nil, errors.New("tasks: nil JetStream")
	}
	if opts.CallbackURL == nil {
		return nil, errors.New("tasks: Options.CallbackURL is required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	prop := opts.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	return &Publisher{js: js, opts: opts, tracer: tp.Tracer("agentos/gateway/tasks"), propagator: prop}, nil
}

// ExecuteAgentAsync is the seed's call: a fresh job running agentID on input, its result POSTed
// to the callback URL. It returns once JetStream has stored the job.
func (p *Publisher) ExecuteAgentAsync(ctx context.Context, agentID, input string) (*ExecutionID, error) {
	return p.publishJob(ctx, Job{AgentID: agentID, Input: input})
}

// Execute publishes job as a fresh task, its result POSTed to the callback URL (status
// "interrupted", with the question, when the run stops to ask a person). It returns once
// JetStream has stored the job.
func (p *Publisher) Execute(ctx context.Context, job Job) (*ExecutionID, error) {
	if job.AgentID == "" {
		return nil, errors.New("tasks: Job.AgentID is required")
	}
	if job.Resume != nil && job.ThreadID == "" {
		return nil, errors.New("tasks: Job.Resume needs the Job.ThreadID it answers")
	}
	return p.publishJob(ctx, job)
}

func (p *Publisher) publishJob(ctx context.Context, job Job) (*ExecutionID, error) {
	taskID := uuid.New().String()
	payload := map[string]interface{}{PayloadAgentID: job.AgentID}
	if job.Input != nil {
		payload[PayloadInput] = job.Input
	}
	if job.ThreadID != "" {
		payload[PayloadThreadID] = job.ThreadID
	}
	if job.Resume != nil {
		payload[PayloadResume] = job.Resume
	}
	timeout := job.Timeout
	if timeout <= 0 {
		timeout = p.opts.Timeout
	}
	msg := &TaskMessage{
		ID:       taskID,
		Type:     TypeAgentExecution,
		Payload:  payload,
		Callback: p.opts.CallbackURL(taskID),
		Timeout:  timeout,
	}
	if p.opts.StreamURL != nil {
		msg.StreamURL = p.opts.StreamURL(taskID)
	}
	if err := p.Publish(ctx, msg); err != nil {
		return nil, err
	}
	return &ExecutionID{ID: taskID}, nil
}

// Publish publishes msg as is, with Nats-Msg-Id set to its id and the trace context of ctx. A
// re-publish of the same id within the stream's duplicate window is dropped by JetStream.
func (p *Publisher) Publish(ctx context.Context, msg *TaskMessage) error {
	ctx, span := p.tracer.Start(ctx, Subject+" publish",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", Subject),
			attribute.String("messaging.message.id", msg.ID),
		))
	defer span.End()

	nm, err := p.Message(ctx, msg)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	if _, err := p.js.PublishMsg(ctx, nm); err != nil {
		err = fmt.Errorf("publish task %s: %w", msg.ID, err)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	return nil
}

// Message builds the NATS message for msg: JSON body, Nats-Msg-Id and traceparent headers. It is
// exported for callers publishing another way (core NATS, a batch).
func (p *Publisher) Message(ctx context.Context, msg *TaskMessage) (*nats.Msg, error) {
	data, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode task %s: %w", msg.ID, err)
	}
	nm := nats.NewMsg(Subject)
	nm.Data = data
	nm.Header.Set(jetstream.MsgIDHeader, msg.ID)
	p.propagator.Inject(ctx, HeaderCarrier(nm.Header))
	return nm, nil
}

// Cancel asks the pool to stop job id wherever it is (a publish on agent.cancel.<id>).
func (p *Publisher) Cancel(ctx context.Context, id string) error {
	nm := nats.NewMsg(CancelSubjectPrefix + id)
	p.propagator.Inject(ctx, HeaderCarrier(nm.Header))
	if err := p.js.Conn().PublishMsg(nm); err != nil {
		return fmt.Errorf("cancel task %s: %w", id, err)
	}
	return nil
}
