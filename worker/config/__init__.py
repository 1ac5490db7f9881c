"""The one settings object (``Settings``: ``WORKER_*`` variables and the matching flags) and
the values it reads."""

from worker.config.settings import Settings, describe_errors
from worker.config.values import ENV_PREFIX, ConfigError, ImportRef

__all__ = ["ENV_PREFIX", "ConfigError", "ImportRef", "Settings", "describe_errors"]
