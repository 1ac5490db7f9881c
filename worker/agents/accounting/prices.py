"""The price table the operator owns (``WORKER_PRICES_FILE``), and what a model call cost.

The file is TOML, read once at start; prices are US dollars per million tokens, kept as
``Decimal`` from the file's text on (TOML floats parsed straight into ``Decimal``), so sums of
many small calls stay exact to the cent and beyond::

    [models."gpt-4o-mini"]            # any provider's model of this name
    input = 0.15
    output = 0.60
    cached_input = 0.075              # optional: cached input tokens are input tokens

    [models."openai:gpt-4o"]          # this provider's model only (wins over the bare name)
    input = 2.50
    output = 10.00

A model the table does not name has no price: its runs report ``cost_usd`` null and its tokens
count in ``agentos_llm_unpriced_tokens_total``. Nothing is guessed.
"""

from __future__ import annotations

import functools
import tomllib
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.agents.accounting.usage import Usage
from worker.config import ConfigError

MILLION = Decimal(1_000_000)


class ModelPrice(BaseModel):
    """One model's prices, in US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: Decimal = Field(ge=0, description="Per million input tokens (not cached).")
    output: Decimal = Field(ge=0, description="Per million output tokens (reasoning included).")
    cached_input: Decimal | None = Field(
        None, ge=0, description="Per million cached input tokens (default: the input price)."
    )

    def cost(self, usage: Usage) -> Decimal:
        """What ``usage`` costs, in US dollars."""
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        micro = (
            (usage.input_tokens - cached) * self.input
            + cached * cached_price
            + usage.output_tokens * self.output
        )
        return micro / MILLION

    @functools.cached_property
    def per_output_token(self) -> float:
        """US dollars per output token, as a float: the running estimate of a stream's cost."""
        return float(self.output / MILLION)


class PriceTable(BaseModel):
    """Prices by model: ``provider:model`` or the bare model name (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    models: dict[str, ModelPrice] = Field(default_factory=dict)

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The price of ``model`` from ``provider``, or None when the table has none."""
        return self.models.get(f"{provider}:{model}") or self.models.get(model)


def load_prices(path: Path | None) -> PriceTable:
    """The table in the TOML file at ``path`` (an empty table for None); ``ConfigError``
    naming ``WORKER_PRICES_FILE`` when the file cannot be read or is not a price table."""
    if path is None:
        return PriceTable()
    try:
        with path.open("rb") as file:
            raw = tomllib.load(file, parse_float=Decimal)
        return PriceTable.model_validate(raw)
    except OSError as exc:
        reason = exc.strerror or str(exc)
    except tomllib.TOMLDecodeError as exc:
        reason = f"not TOML: {exc}"
    except ValidationError as exc:
        reason = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
    raise ConfigError(f"WORKER_PRICES_FILE / --prices-file ({path}): {reason}")
