// Package tasks publishes long agent jobs on NATS for the worker pool (CONTRACT §2).
//
// A job is the seed's TaskMessage, published on "agent.execute". The worker's JetStream stream
// captures that subject, so the seed's plain core-NATS Publish is persisted too; Publisher uses
// the jetstream package instead, so a publish returns only once the stream has stored the job.
// Each message carries a Nats-Msg-Id (the job id: JetStream drops a re-published duplicate) and
// the W3C traceparent of the caller's span, through HeaderCarrier.
package tasks
