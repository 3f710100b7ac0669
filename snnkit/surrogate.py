"""Surrogate gradients for the Heaviside spike function.

A spike is ``s = H(u)`` with ``u = h - v_threshold`` and ``H(0) = 1``. Its derivative is zero almost everywhere, so the
backward pass replaces ``dH/du`` with the derivative ``sg'(u)`` of a smooth surrogate (Neftci et al. 2019,
"Surrogate gradient learning in spiking neural networks").

A surrogate is a small frozen object: ``kernel_id`` (which formula) plus its scalar parameter ``alpha``. The Triton
kernels receive exactly these two values, so every surrogate here is computed identically on CPU (``derivative``,
plain PyTorch) and on CUDA (``snnkit.kernels.lif``). The parameterisation of each one follows SpikingJelly
(``spikingjelly.activation_based.surrogate``) so that models move between the two libraries unchanged.

A later surrogate whose width varies per channel (PDSG, Lun et al. CVPR 2025) subclasses :class:`Surrogate` with a
new ``kernel_id``; the base class keeps no assumption that the parameter is one scalar for the whole layer beyond
what ``derivative`` needs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch

__all__ = ["Surrogate", "ATan", "Sigmoid", "Triangle", "Rectangle", "KERNEL_IDS"]


@dataclass(frozen=True)
class Surrogate(ABC):
    """Base class: a surrogate derivative ``sg'(u)`` identified by ``kernel_id`` with one parameter ``alpha``."""

    alpha: float = 1.0
    kernel_id: ClassVar[int] = -1

    def __post_init__(self) -> None:
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise TypeError(f"{type(self).__name__}: alpha must be a real number, got {type(a).__name__}")
        if not math.isfinite(a) or a <= 0:
            raise ValueError(f"{type(self).__name__}: alpha must be finite and > 0, got {a}")
        object.__setattr__(self, "alpha", float(a))

    @abstractmethod
    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        """``sg'(u)``, the surrogate derivative at ``u = h - v_threshold``."""

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """Heaviside forward with this surrogate's backward (a single-tensor spike function)."""
        return _SurrogateSpike.apply(u, self)


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent surrogate: ``sg'(u) = alpha / (2 (1 + (pi/2 alpha u)^2))``.

    Primitive ``atan(pi/2 alpha u) / pi + 1/2``. Fang et al. (ICCV 2021, PLIF) use ``alpha = 2``; SpikeGPT uses it too.
    """

    alpha: float = 2.0
    kernel_id: ClassVar[int] = 0

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        z = (math.pi / 2 * self.alpha) * u
        return (self.alpha / 2) / (1 + z * z)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Sigmoid surrogate: ``sg'(u) = alpha sig(alpha u) (1 - sig(alpha u))`` (SpikingJelly's default, alpha = 4)."""

    alpha: float = 4.0
    kernel_id: ClassVar[int] = 1

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.alpha * u)
        return self.alpha * s * (1 - s)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangle (piecewise-quadratic primitive): ``sg'(u) = max(0, alpha - alpha^2 |u|)``.

    SpikingJelly's ``PiecewiseQuadratic``; with ``alpha = 1`` it is ``max(0, 1 - |u|)``, the surrogate of SLTT
    (Meng et al. ICCV 2023) and of Esser et al. 2016.
    """

    alpha: float = 1.0
    kernel_id: ClassVar[int] = 2

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        return (self.alpha - self.alpha * self.alpha * u.abs()).clamp_min(0)


@dataclass(frozen=True)
class Rectangle(Surrogate):
    """Rectangle (straight-through window): ``sg'(u) = alpha`` for ``|u| < 1 / (2 alpha)``, else 0.

    SpikingJelly's ``Rect``. With ``alpha = 1 / v_threshold`` it is the window of width ``v_threshold`` and height
    ``1 / v_threshold`` used by Wu et al. (STBP, 2018).
    """

    alpha: float = 1.0
    kernel_id: ClassVar[int] = 3

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        return torch.where(u.abs() < 0.5 / self.alpha, self.alpha, 0.0).to(u.dtype)


KERNEL_IDS: dict[int, type[Surrogate]] = {cls.kernel_id: cls for cls in (ATan, Sigmoid, Triangle, Rectangle)}


class _SurrogateSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.surrogate = surrogate
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(u), None


def from_kernel_id(kernel_id: int, alpha: float) -> Surrogate:
    """Rebuild a surrogate from the ``(kernel_id, alpha)`` pair the kernels receive (used by the custom op)."""
    try:
        return KERNEL_IDS[int(kernel_id)](alpha=alpha)
    except KeyError:
        raise ValueError(f"surrogate kernel_id must be one of {sorted(KERNEL_IDS)}, got {kernel_id}") from None
