"""Streaming benchmark: ``python -m bench.streaming`` (see ``__main__``)."""
