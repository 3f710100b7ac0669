"""One registry style for everything built by name: models, datasets, training methods, losses, metrics.

A :class:`Registry` maps a name to a factory (a class or a function). Registering twice is an error, and an unknown
name gives one line that lists the valid ones, the same way for every kind of thing::

    MODELS = Registry("model")

    @MODELS.register("mlp")
    def _build_mlp(in_shape, num_classes, **kw): ...

    MODELS.build("mlp", (140,), 20, hidden=(128,))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

__all__ = ["Registry"]

F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[F]):
    """Name -> factory table for one kind of thing (``kind`` appears in error messages: "unknown model 'x'").

    Args:
        kind: what the entries are, singular ("model", "dataset", "training method", "loss", "metric").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, F] = {}

    @overload
    def register(self, name: str) -> Callable[[F], F]: ...

    @overload
    def register(self, name: str, factory: F) -> F: ...

    def register(self, name: str, factory: F | None = None):
        """Add ``factory`` under ``name``; without ``factory`` it is a decorator. Names are unique."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def add(f: F) -> F:
            if not callable(f):
                raise TypeError(f"{self.kind} {name!r}: the registered factory must be callable, got {type(f).__name__}")
            if name in self._entries:
                raise ValueError(f"{self.kind} name {name!r} is already registered")
            self._entries[name] = f
            return f

        return add if factory is None else add(factory)

    def get(self, name: str) -> F:
        """The factory registered as ``name``; ValueError naming the valid names otherwise."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}") from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``get(name)(*args, **kwargs)``."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
