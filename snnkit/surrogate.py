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
    "PDSG",
    "SurrogateSpec",
    "SURROGATE_TABLE",
    "ATAN_ID",
    "SIGMOID_ID",
    "TRIANGLE_ID",
    "RECTANGLE_ID",
    "PDSG_ID",
    "surrogate_constants",
    "surrogate_derivative",
    "pdsg_sigma",
    "pdsg_spike",
]

#: Named surrogate ids, imported by the kernels (``triton_kernels/lif.py``) as constexprs.
ATAN_ID, SIGMOID_ID, TRIANGLE_ID, RECTANGLE_ID, PDSG_ID = 0, 1, 2, 3, 4


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


def _pdsg(u: torch.Tensor, c1, c2: float, sg: torch.Tensor) -> torch.Tensor:  # exp(-(u c1 - 1/2)^2 / 2) c1 c2
    # c1 = 1 / sigma, a float or a tensor broadcastable to u (the measured per-channel widths), c2 = 1 / sqrt(2 pi):
    # N(u; sigma / 2, sigma) = exp(-((u - sigma / 2) / sigma)^2 / 2) / (sqrt(2 pi) sigma).
    torch.mul(u, c1, out=sg).sub_(0.5)
    sg.mul_(sg).mul_(-0.5).exp_()
    return sg.mul_(c1).mul_(c2)


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
    # c1 = alpha = 1 / sigma is only the fallback width; the LIF op replaces it by the measured 1 / sigma per step
    # and channel (see PDSG and pdsg_sigma).
    PDSG_ID: SurrogateSpec("PDSG", lambda a: (a, 1.0 / math.sqrt(2.0 * math.pi)), _pdsg),
}


def _spec(kernel_id: int) -> SurrogateSpec:
    try:
        return SURROGATE_TABLE[kernel_id]
    except KeyError:
        raise ValueError(f"unknown surrogate id {kernel_id}; known: {sorted(SURROGATE_TABLE)}") from None


def surrogate_constants(kernel_id: int, alpha: float) -> tuple[float, float]:
    """The constants ``(c1, c2)`` of surrogate ``kernel_id`` at ``alpha`` (shared by the CPU loop and the kernels)."""
    return _spec(kernel_id).constants(alpha)


def surrogate_derivative(u: torch.Tensor, kernel_id: int, alpha: float, out: Optional[torch.Tensor] = None,
                         c1: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``sg'(u)`` of surrogate ``kernel_id`` at ``alpha``, in the kernels' operation order (into ``out`` if given).

    ``c1``: a tensor broadcastable to ``u`` that replaces the first constant (PDSG's measured ``1 / sigma``).
    """
    spec = _spec(kernel_id)
    c1_default, c2 = spec.constants(alpha)
    return spec.formula(u, c1_default if c1 is None else c1, c2, torch.empty_like(u) if out is None else out)


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


@dataclass(frozen=True)
class PDSG(Surrogate):
    """Potential-dependent surrogate gradient (Lun et al., CVPR 2025, "Towards Effective and Sparse Adversarial
    Attack on Spiking Neural Networks via Breaking Invisible Surrogate Gradients").

    ``sg'(u) = N(u; sigma / 2, sigma) = exp(-(u - sigma / 2)^2 / (2 sigma^2)) / (sqrt(2 pi) sigma)``, a Gaussian
    shifted right by half its width, whose width ``sigma`` is measured from the membrane potentials instead of being
    a fixed hyper-parameter: it follows the victim's potential distribution, which an attacker can observe, rather
    than the victim's training surrogate, which it cannot. Inside the LIF op (:func:`snnkit.ops.lif_multistep`)
    ``sigma`` is :func:`pdsg_sigma` of the layer's detached potentials ``h`` at every step and channel; ``alpha``
    (``1 / sigma``) is used only where no potentials are measured, i.e. by :meth:`derivative` and the standalone
    spike function ``PDSG()(u)``. The default ``alpha = 1`` is the paper's fallback ``sigma = 1``.
    """

    alpha: float = 1.0
    kernel_id: ClassVar[int] = PDSG_ID


def pdsg_sigma(h: torch.Tensor) -> torch.Tensor:
    """PDSG's widths: the running standard deviation of the detached potentials ``h [T, B, C, ...]`` -> ``[T, C]``.

    Row ``t`` is the unbiased standard deviation, per channel ``c`` (dim 2: the channel of a convolution's
    ``[T, B, C, H, W]``, the feature of a linear layer's ``[T, B, N]``), of every potential seen so far in that
    channel: steps ``0..t``, the whole batch and the spatial positions, as the reference implementation of Lun et
    al. (ryime/PDSG-SDA) stacks the potentials of steps ``1..t`` and takes ``std`` over all dims but the channel. A
    ``[T, B]`` input has one channel. A zero standard deviation (a constant channel, e.g. one that received no
    input yet) is replaced by 1, as in the paper; so is an undefined one (a single potential, where ``std`` with
    Bessel's correction is NaN in the reference).

    Computed in float64 (per-step two-pass moments merged over steps with Chan et al.'s formula, so a constant
    channel gives exactly 0 and hence 1); returned in float32 (float64 for float64 ``h``).
    """
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"h must be a torch.Tensor, got {type(h).__name__}")
    if h.dim() < 2:
        raise ValueError(f"h must be time-first [T, B, ...], got shape {tuple(h.shape)}")
    T = h.shape[0]
    hd = h.detach().to(torch.float64)
    hd = hd.reshape(T, 1, -1) if hd.dim() == 2 else hd.movedim(2, 1).reshape(T, hd.shape[2], -1)  # [T, C, M]
    m = hd.shape[-1]
    step_mean = hd.mean(-1)
    step_m2 = (hd - step_mean.unsqueeze(-1)).square().sum(-1)
    sigma = torch.empty_like(step_mean)
    mean, m2, n = step_mean[0], step_m2[0], m
    for t in range(T):
        if t > 0:  # merge step t's moments into those of steps 0..t-1
            delta = step_mean[t] - mean
            total = n + m
            mean = mean + delta * (m / total)
            m2 = m2 + step_m2[t] + delta.square() * (n * m / total)
            n = total
        sigma[t] = (m2 / (n - 1)).sqrt() if n > 1 else torch.zeros_like(m2)
    sigma = torch.where(sigma > 0, sigma, torch.ones_like(sigma))  # zero (and NaN) -> 1
    return sigma.to(torch.float64 if h.dtype == torch.float64 else torch.float32)


def pdsg_spike(u: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Heaviside ``H(u)`` whose backward is PDSG's derivative with the given widths ``sigma`` (broadcastable to
    ``u``; measured by :func:`pdsg_sigma` or any other rule). The spike function of the step-by-step LIF oracle and
    of the SpikingJelly adapter in :mod:`snnkit.attacks`."""
    return _MeasuredSpike.apply(u, sigma)


class _MeasuredSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(u, sigma)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        u, sigma = ctx.saved_tensors
        inv_sigma = (1.0 / sigma).to(u.dtype)
        return grad * surrogate_derivative(u, PDSG_ID, 1.0, c1=inv_sigma), None


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
