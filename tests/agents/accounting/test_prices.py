"""The price table: the TOML file, cost to the cent, ``provider:model`` keys, and a model
without a price (``cost_usd`` null, and the unpriced counter moves); a run's cost in the per-run
histogram."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests.agents.accounting.helpers import Deltas, invoke
from tests.agents.helpers import local_agent
from worker.agents.accounting import PriceTable, Usage, UsageTracker, load_prices
from worker.config import ConfigError

PRICES_TOML = """
# US dollars per million tokens
[models."acct-priced"]
input = 2.50
output = 10.00
cached_input = 1.25

[models."acct-bare"]
input = 0.15
output = 0.60

[models."fake:acct-bare"]
input = 1
output = 2
"""


@pytest.fixture
def prices(tmp_path: Path) -> PriceTable:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES_TOML)
    return load_prices(path)


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_the_file_is_read_exactly(prices: PriceTable) -> None:
    price = prices.price("openai", "acct-priced")
    assert price is not None
    # TOML floats are read as decimals, never through binary floating point.
    assert (price.input, price.output, price.cached_input) == (
        Decimal("2.50"),
        Decimal("10.00"),
        Decimal("1.25"),
    )


def test_cost_to_the_cent(prices: PriceTable) -> None:
    price = prices.price("openai", "acct-priced")
    assert price is not None
    usage = Usage(input_tokens=1_234_567, output_tokens=89_012, cached_input_tokens=200_000)
    # 1,034,567 x $2.50 + 200,000 x $1.25 + 89,012 x $10.00, per million tokens
    assert price.cost(usage) == Decimal("3.7265375")
    assert cents(price.cost(usage)) == Decimal("3.73")
    # A thousand small calls add up exactly: no float drift.
    one = Usage(input_tokens=7, output_tokens=3)
    assert sum((price.cost(one) for _ in range(1000)), Decimal(0)) == Decimal("0.0475")


def test_cached_input_is_priced_as_input_without_a_price_of_its_own(prices: PriceTable) -> None:
    price = prices.price("openai", "acct-bare")
    assert price is not None
    usage = Usage(input_tokens=1_000_000, output_tokens=0, cached_input_tokens=400_000)
    assert price.cost(usage) == Decimal("0.15")


def test_a_provider_model_key_wins_over_the_bare_name(prices: PriceTable) -> None:
    fake, other = prices.price("fake", "acct-bare"), prices.price("openai", "acct-bare")
    assert fake is not None
    assert other is not None
    assert (fake.input, other.input) == (Decimal(1), Decimal("0.15"))
    assert prices.price("openai", "not-in-the-table") is None


async def test_a_runs_cost_with_the_tracker(prices: PriceTable) -> None:
    usage = {"input_tokens": 1_234_567, "output_tokens": 89_012, "cached_input_tokens": 200_000}
    agent = local_agent(
        "chat",
        {"model": {"model": "acct-priced", "responses": [{"content": "ok", "usage": usage}]}},
    )
    tracker = UsageTracker(agent_type="chat", prices=prices)
    moved = Deltas()
    await invoke(agent, "?", tracker)
    assert tracker.cost_usd == Decimal("3.7265375")
    assert tracker.to_json()["usage"]["cost_usd"] == 3.7265375
    labels = {"agent_type": "chat", "provider": "fake", "model": "acct-priced"}
    assert moved("agentos_llm_cost_usd_total", **labels) == pytest.approx(3.7265375)
    assert moved("agentos_llm_unpriced_tokens_total", **labels) == 0
    # The run's whole cost, once, in the per-run histogram.
    assert moved("agentos_run_cost_usd_count", agent_type="chat") == 1
    assert moved("agentos_run_cost_usd_sum", agent_type="chat") == pytest.approx(3.7265375)


async def test_a_model_without_a_price_gives_null_and_moves_the_counter(
    prices: PriceTable,
) -> None:
    usage = {"input_tokens": 40, "output_tokens": 2}
    agent = local_agent(
        "chat",
        {"model": {"model": "acct-unpriced", "responses": [{"content": "ok", "usage": usage}]}},
    )
    tracker = UsageTracker(agent_type="chat", prices=prices)
    moved = Deltas()
    await invoke(agent, "?", tracker)
    assert tracker.cost_usd is None
    assert tracker.to_json()["usage"]["cost_usd"] is None
    labels = {"agent_type": "chat", "provider": "fake", "model": "acct-unpriced"}
    assert moved("agentos_llm_unpriced_tokens_total", **labels) == 42
    assert moved("agentos_llm_cost_usd_total", **labels) == 0
    assert moved("agentos_run_cost_usd_count", agent_type="chat") == 0  # no figure, no guess


def test_no_file_is_an_empty_table() -> None:
    assert load_prices(None).models == {}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('[models."m"]\ninput = 1\n', "output"),
        ('[models."m"]\ninput = -1\noutput = 1\n', "greater than or equal to 0"),
        ('[models."m"]\ninput = 1\noutput = 1\nsurprise = 2\n', "surprise"),
        ('[prices."m"]\ninput = 1\noutput = 1\n', "prices"),
        ("models = [", "not TOML"),
    ],
)
def test_a_bad_file_stops_start_up_naming_the_variable(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="WORKER_PRICES_FILE") as info:
        load_prices(path)
    assert reason in str(info.value)


def test_a_missing_file_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"WORKER_PRICES_FILE.*No such file"):
        load_prices(tmp_path / "absent.toml")
