"""Name -> model-constructor registry: ``build("mlp", in_shape=(140,), num_classes=20)``.

Every model in the registry takes ``in_shape`` (one time step of one sample, without T and B, e.g. ``(140,)`` or
``(2, 48, 48)``) and ``num_classes`` plus its own keyword arguments, and returns logits ``[T, B, num_classes]``
for a time-first input ``[T, B, *in_shape]``. The table is a :class:`snnkit.registry.Registry`, like those of
datasets, training methods, losses and metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from snnkit.registry import Registry

__all__ = ["MODELS", "register", "build", "available", "run_defaults"]

ModelFactory = Callable[..., nn.Module]
#: The model table: ``factory(in_shape, num_classes, **kw) -> nn.Module``.
MODELS: Registry[ModelFactory] = Registry("model")


#: Model name -> ``f(dataset) -> {TrainConfig field: value}``: how the model's paper trains on a dataset.
RUN_DEFAULTS: dict[str, Callable[[str], dict[str, Any]]] = {}


def register(
    name: str, *, run_defaults: Callable[[str], dict[str, Any]] | None = None
) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: make ``factory(in_shape, num_classes, **kw)`` buildable as ``build(name, ...)``.

    ``run_defaults(dataset)`` (optional) returns the training settings the model's paper uses on ``dataset``
    (``TrainConfig`` fields such as ``epochs`` and ``batch_size``, and ``model_kwargs``); ``snnkit train`` applies
    those its user did not type (see :func:`run_defaults`).
    """
    if run_defaults is not None:
        RUN_DEFAULTS[name] = run_defaults
    return MODELS.register(name)


def run_defaults(name: str, dataset: str) -> dict[str, Any]:
    """The training settings registered for model ``name`` on ``dataset`` (empty when there are none)."""
    f = RUN_DEFAULTS.get(name)
    return dict(f(dataset)) if f is not None else {}


def available() -> list[str]:
    """Sorted names accepted by :func:`build`."""
    return MODELS.names()


def build(name: str, in_shape: Sequence[int], num_classes: int, **kwargs: Any) -> nn.Module:
    """Construct the registered model ``name``.

    Args:
        name: a name from :func:`available`.
        in_shape: shape of one time step of one sample (no T, no B), e.g. ``(140,)`` or ``(2, 48, 48)``.
        num_classes: number of output logits.
        **kwargs: model-specific options (see each model's docstring).

    Raises:
        ValueError: unknown name (the message lists the valid ones) or invalid shape/class count.
    """
    factory = MODELS.get(name)
    shape = tuple(int(s) for s in in_shape)
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"model {name!r}: in_shape must be a non-empty tuple of positive sizes, got {in_shape!r}")
    if int(num_classes) < 2:
        raise ValueError(f"model {name!r}: num_classes must be >= 2, got {num_classes}")
    try:
        return factory(shape, int(num_classes), **kwargs)
    except TypeError as e:
        # A keyword the model does not take (``--model-arg`` typo) is the caller's error, not a crash.
        if "keyword argument" in str(e) or "positional argument" in str(e):
            raise ValueError(f"model {name!r} does not accept these arguments {sorted(kwargs)}: {e}") from None
        raise
