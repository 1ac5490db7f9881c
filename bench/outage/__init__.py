"""Outage benchmark: fast-failing invocations while every provider is down."""
