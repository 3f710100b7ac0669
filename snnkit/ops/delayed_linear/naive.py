"""The readable oracle of the delayed linear op: build the dense ``[C_out, C_in, max_delay]`` kernel, convolve.

Nothing here is hand-derived: autograd differentiates the Gaussian taps and ``conv1d``, so the tests compare the
tap-sparse CPU path (``cpu.py``) and the Triton kernels against it. It is the computation the ``dcls`` package
does (Hammouamri et al. ICLR 2024), written with delays instead of kernel positions::

    g_ji(k) = exp(-((k - p_ji) / sigma)^2 / 2) / Z_ji,   Z_ji = sum_{k=0}^{D-1} exp(-((k - p_ji) / sigma)^2 / 2)
    out[t, b, j] = sum_i w_ji sum_{k=0}^{D-1} g_ji(k) x[t - k, b, i]          (x[t < 0] = 0, D = max_delay)

and with ``sigma=None`` the one-hot taps of the integer delays ``d_ji = round(p_ji)`` (clamped into [0, D-1]).
Cost and memory: the dense kernel and a convolution over all D taps, ``T B C_out C_in D`` multiply-adds.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

__all__ = ["gaussian_taps", "integer_delays", "integer_taps", "dense_kernel", "delayed_linear_naive"]


def gaussian_taps(positions: torch.Tensor, max_delay: int, sigma: float) -> torch.Tensor:
    """The normalised Gaussian taps ``g_ji(k)`` ``[C_out, C_in, max_delay]`` (index k = delay in steps)."""
    k = torch.arange(max_delay, dtype=positions.dtype, device=positions.device)
    sq = ((k - positions.unsqueeze(-1)) / sigma) ** 2
    # Shifting by the nearest tap's exponent changes nothing after normalisation but keeps a narrow Gaussian centred
    # between taps from underflowing to 0/0.
    g = torch.exp(-0.5 * (sq - sq.detach().amin(-1, keepdim=True)))
    return g / g.sum(-1, keepdim=True)


def integer_delays(positions: torch.Tensor, max_delay: int) -> torch.Tensor:
    """``round(positions)`` (half to even, as ``torch.round``) clamped into [0, max_delay - 1], as int64."""
    return torch.round(positions.detach()).clamp_(0, max_delay - 1).long()


def integer_taps(positions: torch.Tensor, max_delay: int) -> torch.Tensor:
    """One-hot taps of the integer delays ``[C_out, C_in, max_delay]`` (no gradient to the positions)."""
    return F.one_hot(integer_delays(positions, max_delay), max_delay).to(positions.dtype)


def dense_kernel(weight: torch.Tensor, positions: torch.Tensor, max_delay: int,
                 sigma: Optional[float]) -> torch.Tensor:
    """``w_ji g_ji(k)`` ``[C_out, C_in, max_delay]``, the kernel a dense implementation convolves."""
    taps = integer_taps(positions, max_delay) if sigma is None else gaussian_taps(positions, max_delay, sigma)
    return weight.unsqueeze(-1) * taps


def delayed_linear_naive(x: torch.Tensor, weight: torch.Tensor, positions: torch.Tensor, max_delay: int,
                         sigma: Optional[float] = None) -> torch.Tensor:
    """``x [T, B, C_in]`` -> ``[T, B, C_out]`` through the dense kernel (see the module docstring)."""
    kernel = dense_kernel(weight.to(x.dtype), positions.to(x.dtype), max_delay, sigma)
    xc = F.pad(x.permute(1, 2, 0), (max_delay - 1, 0))  # [B, C_in, D - 1 + T]: causal, zeros before t = 0
    # conv1d is a cross-correlation: kernel index k' multiplies x[t + k' - (D - 1)], i.e. delay D - 1 - k'.
    y = F.conv1d(xc, kernel.flip(-1))
    return y.permute(2, 0, 1)
