"""Surrogate gradients for the Heaviside spike function, and the one table the CPU loops and kernels share.

A spike is ``s = H(u)`` with ``u = h - v_threshold`` and ``H(0) = 1``. Its derivative is zero almost everywhere, so the
backward pass replaces ``dH/du`` with the derivative ``sg'(u)`` of a smooth surrogate (Neftci et al. 2019,
"Surrogate gradient learning in spiking neural networks").

A surrogate is a small frozen object: its table entry (``kernel_id``, which formula) plus its scalar parameter
``alpha``. :data:`SURROGATE_TABLE` is the only place where a surrogate's id, its two kernel constants ``(c1, c2)``
and its CPU formula are written; the Triton kernels import the named ids (``ATAN_ID`` ...) and receive ``c1, c2``
computed here in double precision, so every surrogate is computed identically on CPU and on CUDA. The
parameterisation of each follows SpikingJelly (``spikingjelly.activation_based.surrogate``) so that models move
between the two libraries unchanged.

Adding a surrogate: (1) a new id and a :class:`SurrogateSpec` entry here (constants and the CPU formula written in
the kernel's operation order), (2) the same formula as one more branch of ``_surrogate_grad`` in
``triton_kernels/lif.py`` keyed on the new id, (3) a :class:`Surrogate` subclass with ``kernel_id`` set, (4) add
it to ``tests/ops/lif_cases.py``, whose grid checks kernel against CPU and CPU against SpikingJelly or autograd.
"""

from __future__ import annotations

import math
from abc import ABC
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Optional

import torch

__all__ = [
    "Surrogate",
    "ATan",
    "Sigmoid",
    "Triangle",
    "Rectangle",
    "SurrogateSpec",
    "SURROGATE_TABLE",
    "ATAN_ID",
    "SIGMOID_ID",
    "TRIANGLE_ID",
    "RECTANGLE_ID",
    "surrogate_constants",
    "surrogate_derivative",
]

#: Named surrogate ids, imported by the kernels (``triton_kernels/lif.py``) as constexprs.
ATAN_ID, SIGMOID_ID, TRIANGLE_ID, RECTANGLE_ID = 0, 1, 2, 3


def _rsub(c: float, a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``c - a`` into ``out`` (torch.rsub has no ``out=``)."""
    return torch.sub(a.new_full((), c), a, out=out)


def _atan(u: torch.Tensor, c1: float, c2: float, sg: torch.Tensor) -> torch.Tensor:  # c2 / (1 + (u c1)^2)
    torch.mul(u, c1, out=sg)
    sg.mul_(sg).add_(1)
    return torch.div(sg.new_full((), c2), sg, out=sg)


def _sigmoid(u: torch.Tensor, c1: float, c2: float, sg: torch.Tensor) -> torch.Tensor:  # (s - s^2) c2, s = sig(u c1)
    torch.sigmoid(torch.mul(u, c1, out=sg), out=sg)
    return sg.addcmul_(sg, sg, value=-1).mul_(c2)


def _triangle(u: torch.Tensor, c1: float, c2: float, sg: torch.Tensor) -> torch.Tensor:  # max(0, c1 - |u| c2)
    return _rsub(c1, torch.abs(u, out=sg).mul_(c2), out=sg).clamp_min_(0)


def _rectangle(u: torch.Tensor, c1: float, c2: float, sg: torch.Tensor) -> torch.Tensor:  # c1 where |u| < c2
    torch.abs(u, out=sg)
    return sg.copy_(sg < c2).mul_(c1)


@dataclass(frozen=True)
class SurrogateSpec:
    """One row of the surrogate table.

    Attributes:
        name: the formula's name.
        constants: ``alpha -> (c1, c2)``, the two constants the formula uses (computed in double precision).
        formula: ``(u, c1, c2, out) -> out``: ``sg'(u)`` written into ``out`` with exactly the operation order of
            the kernel's branch for this id, so the CPU loop and the kernel agree to the last bit or two.
    """

    name: str
    constants: Callable[[float], tuple[float, float]]
    formula: Callable[[torch.Tensor, float, float, torch.Tensor], torch.Tensor]


#: id -> :class:`SurrogateSpec`: the single home of every built-in surrogate's id, constants and CPU formula.
SURROGATE_TABLE: dict[int, SurrogateSpec] = {
    ATAN_ID: SurrogateSpec("ATan", lambda a: (math.pi / 2 * a, a / 2), _atan),
    SIGMOID_ID: SurrogateSpec("Sigmoid", lambda a: (a, a), _sigmoid),
    TRIANGLE_ID: SurrogateSpec("Triangle", lambda a: (a, a * a), _triangle),
    RECTANGLE_ID: SurrogateSpec("Rectangle", lambda a: (a, 0.5 / a), _rectangle),
}


def _spec(kernel_id: int) -> SurrogateSpec:
    try:
        return SURROGATE_TABLE[kernel_id]
    except KeyError:
        raise ValueError(f"unknown surrogate id {kernel_id}; known: {sorted(SURROGATE_TABLE)}") from None


def surrogate_constants(kernel_id: int, alpha: float) -> tuple[float, float]:
    """The constants ``(c1, c2)`` of surrogate ``kernel_id`` at ``alpha`` (shared by the CPU loop and the kernels)."""
    return _spec(kernel_id).constants(alpha)


def surrogate_derivative(u: torch.Tensor, kernel_id: int, alpha: float, out: Optional[torch.Tensor] = None
                         ) -> torch.Tensor:
    """``sg'(u)`` of surrogate ``kernel_id`` at ``alpha``, in the kernels' operation order (into ``out`` if given)."""
    spec = _spec(kernel_id)
    c1, c2 = spec.constants(alpha)
    return spec.formula(u, c1, c2, torch.empty_like(u) if out is None else out)


@dataclass(frozen=True)
class Surrogate(ABC):
    """Base class: the surrogate derivative ``sg'(u)`` of table entry ``kernel_id`` with one parameter ``alpha``.

    Subclasses only set ``kernel_id`` and a default ``alpha``; the formula lives in :data:`SURROGATE_TABLE`.
    """

    alpha: float = 1.0
    kernel_id: ClassVar[int] = -1

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # The op computes the table's formula for kernel_id, on CPU and in the kernels; an overridden `derivative`
        # would silently not be the function used, so it is refused where it is written.
        if "derivative" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} overrides Surrogate.derivative, which snnkit's LIF op would not call (it computes "
                "the formula of SURROGATE_TABLE[kernel_id] on CPU and in the Triton kernel). Add the surrogate to the "
                "table as the snnkit.surrogate module docstring describes, or subclass an existing one to change "
                "only alpha"
            )

    def __post_init__(self) -> None:
        if self.kernel_id not in SURROGATE_TABLE:
            raise TypeError(
                f"{type(self).__name__} has no entry in snnkit.surrogate.SURROGATE_TABLE (kernel_id "
                f"{self.kernel_id}); subclass ATan, Sigmoid, Triangle or Rectangle, or add an entry as the "
                "snnkit.surrogate module docstring describes"
            )
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise TypeError(f"{type(self).__name__}: alpha must be a real number, got {type(a).__name__}")
        if not math.isfinite(a) or a <= 0:
            raise ValueError(f"{type(self).__name__}: alpha must be finite and > 0, got {a}")
        object.__setattr__(self, "alpha", float(a))

    def derivative(self, u: torch.Tensor) -> torch.Tensor:
        """``sg'(u)``, the surrogate derivative at ``u = h - v_threshold`` (the table's formula)."""
        return surrogate_derivative(u, self.kernel_id, self.alpha)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """Heaviside forward with this surrogate's backward (a single-tensor spike function)."""
        return _SurrogateSpike.apply(u, self)


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent surrogate: ``sg'(u) = alpha / (2 (1 + (pi/2 alpha u)^2))``.

    Primitive ``atan(pi/2 alpha u) / pi + 1/2``. Fang et al. (ICCV 2021, PLIF) use ``alpha = 2``; SpikeGPT uses it too.
    """

    alpha: float = 2.0
    kernel_id: ClassVar[int] = ATAN_ID


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Sigmoid surrogate: ``sg'(u) = alpha sig(alpha u) (1 - sig(alpha u))`` (SpikingJelly's default, alpha = 4)."""

    alpha: float = 4.0
    kernel_id: ClassVar[int] = SIGMOID_ID


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangle (piecewise-quadratic primitive): ``sg'(u) = max(0, alpha - alpha^2 |u|)``.

    SpikingJelly's ``PiecewiseQuadratic``; with ``alpha = 1`` it is ``max(0, 1 - |u|)``, the surrogate of SLTT
    (Meng et al. ICCV 2023) and of Esser et al. 2016.
    """

    alpha: float = 1.0
    kernel_id: ClassVar[int] = TRIANGLE_ID


@dataclass(frozen=True)
class Rectangle(Surrogate):
    """Rectangle (straight-through window): ``sg'(u) = alpha`` for ``|u| < 1 / (2 alpha)``, else 0.

    SpikingJelly's ``Rect``. With ``alpha = 1 / v_threshold`` it is the window of width ``v_threshold`` and height
    ``1 / v_threshold`` used by Wu et al. (STBP, 2018).
    """

    alpha: float = 1.0
    kernel_id: ClassVar[int] = RECTANGLE_ID


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
