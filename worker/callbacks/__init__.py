"""Callback delivery: a durable outbox, Standard Webhooks signing, SSRF checks, a breaker per
receiver host."""
