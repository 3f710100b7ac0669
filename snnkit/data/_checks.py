"""Argument validation shared by the dataset classes: every error names the offending argument."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ValueError listing them."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_positive_number(name: str, value: object) -> float:
    """A finite real number > 0 (bools are rejected: ``dt_ms=True`` is a bug, not 1 ms)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_divides(name: str, value: object, total: int) -> int:
    """A positive integer that divides ``total`` exactly (channel pooling must not drop channels)."""
    value = check_int(name, value, minimum=1)
    if total % value:
        divisors = [d for d in range(1, total + 1) if total % d == 0]
        raise ValueError(f"{name}={value} does not divide the {total} input channels; use one of {divisors}")
    return value


def check_fraction(name: str, value: object) -> float:
    """A real number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {value!r}")
    return float(value)
