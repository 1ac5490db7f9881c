"""NATS: the connection every door shares, and the embedded nats-server of the default set-up."""
