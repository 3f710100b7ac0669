"""Each synapse's taps: the window of integer delays inside its Gaussian's support, and the tap coefficients.

The op only ever touches, for synapse j <- i, the ``W`` consecutive delays ``start_ji .. start_ji + W - 1`` with
coefficients ``c_ji(m) = w_ji g_ji(start_ji + m)``; everything else (CPU path, Triton kernels) is a "tap-sparse"
convolution ``out[t, b, j] = sum_i sum_m c_ji(m) x[t - start_ji - m, b, i]``.

Support bound. With ``k0 = round(p)`` (clamped into [0, D-1]) the window is ``[k0 - M, k0 + M]`` shifted to stay
inside [0, D-1] (or all D taps when ``2M + 1 >= D``). For p in [0, D-1], a dropped tap at offset ``|m| > M`` from k0
lies at least ``|m| - 1/2`` from p (one per offset and side), and the window keeps, on at least one side, the taps
at offsets 0..M, at most ``m + 1/2`` from p. So the dropped share of the normalisation is at most::

    bound(M, sigma) = 2 sum_{m > M} exp(-(m - 1/2)^2 / (2 sigma^2)) / sum_{m=0}^{M} exp(-(m + 1/2)^2 / (2 sigma^2))

and :func:`support_radius` takes the smallest M with ``bound < 2^-24`` (half a float32 ulp of 1): the truncated,
renormalised taps equal the dense ones to float32 precision (tested against the dense oracle in float64). A position
outside [0, D-1] only moves the kept taps closer than the dropped ones relative to the bound. Examples: sigma = 0.23
keeps 3 taps, 0.5 keeps 7, 1 keeps 13, 12 keeps all 25 of max_delay 25.
Integer delays (``sigma=None``) keep one tap, ``c = w``, at ``start = round(p)``.
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import torch

__all__ = ["support_radius", "support_bound", "tap_window", "tap_coefficients", "FLOAT32_HALF_ULP"]

FLOAT32_HALF_ULP = 2.0 ** -24


def support_bound(radius: int, sigma: float) -> float:
    """The bound of the module docstring on the Gaussian mass dropped outside ``radius`` taps (relative to Z)."""
    s2 = 2.0 * sigma * sigma
    # Both sums are scaled by exp(1/4 / s2), the largest kept term, so narrow Gaussians do not underflow.
    kept = sum(math.exp(-((m + 0.5) ** 2 - 0.25) / s2) for m in range(radius + 1))
    dropped, m = 0.0, radius + 1
    while True:  # terms decay faster than geometrically past the peak; stop once they no longer count
        term = math.exp(-((m - 0.5) ** 2 - 0.25) / s2)
        dropped += term
        if term <= 1e-30 * dropped or term == 0.0:
            break
        m += 1
    return 2.0 * dropped / kept


@torch.compiler.assume_constant_result  # torch.compile calls it while tracing and keeps the int
def support_radius(sigma: float, max_delay: int) -> int:
    """Smallest M with :func:`support_bound` ``(M, sigma) < 2^-24``, capped at ``max_delay - 1`` (all taps)."""
    return _support_radius(sigma, max_delay)


@functools.lru_cache(maxsize=256)
def _support_radius(sigma: float, max_delay: int) -> int:
    radius = 0
    while radius < max_delay - 1 and support_bound(radius, sigma) >= FLOAT32_HALF_ULP:
        radius += 1
    return radius


def tap_window(positions: torch.Tensor, max_delay: int, sigma: Optional[float]) -> tuple[torch.Tensor, int]:
    """``(start [C_out, C_in] int32, W)``: each synapse's first tap and the common window width."""
    k0 = torch.round(positions.detach()).clamp_(0, max_delay - 1)
    if sigma is None:
        return k0.to(torch.int32), 1
    radius = support_radius(float(sigma), max_delay)
    width = min(2 * radius + 1, max_delay)
    start = (k0 - radius).clamp_(0, max_delay - width)
    return start.to(torch.int32), width


def tap_coefficients(weight: torch.Tensor, positions: torch.Tensor, start: torch.Tensor, width: int,
                     sigma: Optional[float], dtype: torch.dtype) -> torch.Tensor:
    """``c_ji(m) = w_ji g_ji(start_ji + m)`` ``[C_out, C_in, W]`` in ``dtype``, differentiable in weight and positions
    (through the Gaussian and its normalisation; autograd, on ``C_out C_in W`` elements only)."""
    w = weight.to(dtype)
    if sigma is None:
        return w.unsqueeze(-1)
    k = start.to(dtype).unsqueeze(-1) + torch.arange(width, dtype=dtype, device=start.device)
    sq = ((k - positions.to(dtype).unsqueeze(-1)) / sigma) ** 2
    # Normalising makes the shift by the nearest tap's exponent free, and it keeps narrow Gaussians from underflowing.
    g = torch.exp(-0.5 * (sq - sq.detach().amin(-1, keepdim=True)))
    return w.unsqueeze(-1) * (g / g.sum(-1, keepdim=True))
