"""What the agent-type and tool registries share: things kept by their ``name``, one each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Generic, Protocol, TypeVar


class Named(Protocol):
    """Anything with a ``name`` (an ``AgentType``, a LangChain ``BaseTool``)."""

    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


class ByName(Generic[N]):
    """Things by name; registering a second thing under a taken name is refused."""

    kind: ClassVar[str] = "item"
    """What the things are called in errors (``agent type``, ``tool``)."""

    def __init__(self, items: Iterable[N] = ()) -> None:
        self._by_name: dict[str, N] = {}
        for item in items:
            self.register(item)

    def register(self, item: N) -> None:
        """Add ``item``; a second one with the same name is refused (``ValueError``)."""
        if item.name in self._by_name:
            raise ValueError(f"{self.kind} {item.name!r} is registered twice")
        self._by_name[item.name] = item

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._by_name)
