"""The one settings object (``Settings``: ``WORKER_*`` variables and the matching flags) and
the values it reads."""

from worker.config.settings import Settings
from worker.config.values import ENV_PREFIX, ConfigError, ImportRef, describe_errors

__all__ = ["ENV_PREFIX", "ConfigError", "ImportRef", "Settings", "describe_errors"]
