"""Callback delivery: a durable outbox, Standard Webhooks signing, a breaker per receiver host
(targets are checked by ``worker.outbound``)."""
