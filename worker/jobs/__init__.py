"""Long jobs over NATS JetStream (CONTRACT section 2): the task stream and its consumer, the
result store, running a job, dead letters. Callback delivery lives in ``worker.callbacks``."""
