"""The jobs fixtures (streams of the test's own, a receiver, a NATS client) serve here too."""

from tests.jobs.conftest import job_env, nc, receiver

__all__ = ["job_env", "nc", "receiver"]
