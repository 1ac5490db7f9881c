"""Jobs benchmark: N jobs published on NATS -> N callbacks received, against a raw loop."""
