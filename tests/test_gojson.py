"""Request models decode like Go's encoding/json: keys match case-insensitively."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from worker.http.schemas import AgentConfig, InvokeRequest


def test_untagged_go_struct_is_accepted() -> None:
    body = AgentConfig.model_validate({"Type": "chat", "Name": "", "Config": None})
    assert (body.type, body.name, body.config) == ("chat", "", None)


def test_any_case_matches_and_exact_wins() -> None:
    assert AgentConfig.model_validate({"TYPE": "echo"}).type == "echo"
    assert AgentConfig.model_validate({"Type": "chat", "type": "echo"}).type == "echo"
    assert AgentConfig.model_validate({"type": "echo", "Type": "chat"}).type == "echo"


def test_nested_config_keys_are_not_folded() -> None:
    body = AgentConfig.model_validate({"type": "chat", "config": {"System_Prompt": "x"}})
    assert body.config == {"System_Prompt": "x"}


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="typ"):
        AgentConfig.model_validate({"type": "chat", "typ": "x"})
    with pytest.raises(ValidationError, match="Field required"):
        InvokeRequest.model_validate({"Timeout": "1s"})
