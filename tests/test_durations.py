"""Go durations: what Go's time.ParseDuration accepts and Duration.String prints."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from worker.durations import (
    GoDuration,
    ReportedDuration,
    format_go_duration,
    parse_go_duration,
    seconds_to_go,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("30s", 30 * S),
        ("5m0s", 300 * S),
        ("1h2m3.5s", 3723 * S + S // 2),
        ("300ms", 300_000_000),
        ("1.5us", 1500),
        ("1.5\u00b5s", 1500),
        ("1.5\u03bcs", 1500),
        ("-1.5h", -5400 * S),
        ("+2h45m", 9900 * S),
        ("100ns", 100),
        (".5s", S // 2),
    ],
)
def test_parse_go_duration(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    "text", ["", "s", "1", "1x", "1.s.", "3 s", "1e3s", "--1s", "99999999999h"]
)
def test_parse_go_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|unit"):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1\u00b5s"),
        (2_200_000, "2.2ms"),
        (int(2.5 * S), "2.5s"),
        (90 * S, "1m30s"),
        (3723 * S + S // 2, "1h2m3.5s"),
        (-5 * S, "-5s"),
        (300 * S, "5m0s"),
    ],
)
def test_format_go_duration(ns: int, text: str) -> None:
    assert format_go_duration(ns) == text


def test_round_trip_through_models() -> None:
    class Body(BaseModel):
        timeout: GoDuration

    class Out(BaseModel):
        took: ReportedDuration

    assert Body.model_validate({"timeout": 300_000_000_000}).timeout == 300.0
    assert Body.model_validate({"timeout": "5m"}).timeout == 300.0
    assert Out(took=2.5).model_dump(mode="json") == {"took": "2.5s"}
    assert seconds_to_go(0.0125) == "12.5ms"
    with pytest.raises(ValidationError):
        Body.model_validate({"timeout": True})
    with pytest.raises(ValidationError):
        Body.model_validate({"timeout": "soon"})
