"""``delayed_linear``: a linear layer with one learnable delay per synapse (DCLS, Hammouamri et al. ICLR 2024).

Everything about the op is in this folder (the layout of ``snnkit/ops/lif/``):

- ``naive.py``: the readable oracle, the dense ``max_delay``-wide kernel convolved with autograd doing the backward;
- ``taps.py``: each synapse's window of taps inside its Gaussian support (the support bound) and the coefficients;
- ``cpu.py``: the torch path of the tap-sparse convolution (sparse per-delay products, or conv1d for wide windows);
- ``launch.py``: the Triton launchers of the kernels in ``triton_kernels/delayed_linear.py`` (``snnkit.kernels``);
- ``function.py``: the ``torch.library`` custom ops with fakes (``torch.compile(fullgraph=True)`` traces through) and
  the ``autograd.Function`` (one node per call, saving only what the backward needs);
- this file: the validated public function.

See ``docs/delays_op.md`` for the equation, the tail, the support bound and the mapping to ``dcls``.
"""

from __future__ import annotations

from typing import Optional

import torch

from ...validation import check_finite, check_positive_int, check_real, check_tensor
from .._dispatch import use_triton
from .cpu import compute_dtype
from .function import TapConv
from .naive import delayed_linear_naive
from .taps import support_radius, tap_coefficients, tap_window

__all__ = ["delayed_linear", "delayed_linear_naive", "support_radius", "BACKENDS"]

BACKENDS = ("auto", "triton", "torch")

#: With ``backend="auto"`` on CUDA, windows wider than this fraction of max_delay (wide Gaussians early in the sigma
#: schedule) run the dense conv1d of the torch path (cuDNN's GEMMs beat per-tap gathers when most taps are touched).
#: A starting point, not yet measured on a GPU: ``scripts/bench_delay.py`` reports both sides.
TRITON_MAX_WIDTH_FRACTION = 0.25


def _resolve_backend(backend: str, x: torch.Tensor) -> bool:
    """True when the Triton kernels run this call (the rules of every op's ``backend``, ``snnkit.ops._dispatch``)."""
    return use_triton(backend, x, op="delayed_linear", choices=BACKENDS)


def _check_inputs(x, weight, positions, max_delay, sigma) -> tuple[int, Optional[float]]:
    max_delay = check_positive_int("max_delay", max_delay)
    check_tensor("x", x, min_dim=3, time_first=True)
    if x.dim() != 3:
        raise ValueError(f"x must be time-first [T, B, C_in] (3 dims), got shape {tuple(x.shape)}")
    check_tensor("weight", weight)
    if weight.dim() != 2:
        raise ValueError(f"weight must be [C_out, C_in] (2 dims), got shape {tuple(weight.shape)}")
    check_tensor("positions", positions)
    if tuple(positions.shape) != tuple(weight.shape):
        raise ValueError(f"positions must have weight's shape {tuple(weight.shape)} (one delay per synapse), got "
                         f"{tuple(positions.shape)}")
    if x.shape[2] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[2]} input features (x.shape[2]) but weight expects C_in = {weight.shape[1]}")
    for name, t in (("weight", weight), ("positions", positions)):
        if t.device != x.device:
            raise ValueError(f"{name} is on {t.device} but x is on {x.device}")
    if sigma is not None:
        sigma = check_real("sigma", sigma)
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0 (the Gaussian width in steps) or None for integer delays, got {sigma}")
    for name, t in (("x", x), ("positions", positions)):
        if t.device.type == "cpu" and not torch.compiler.is_compiling():
            check_finite(name, t)
        else:
            torch._assert_async(torch.isfinite(t).all(), f"{name} contains NaN or inf")
    return max_delay, sigma


def delayed_linear(x: torch.Tensor, weight: torch.Tensor, positions: torch.Tensor, max_delay: int,
                   sigma: Optional[float] = None, *, backend: str = "auto") -> torch.Tensor:
    """A linear map with one learnable delay per synapse, time first: ``x [T, B, C_in]`` -> ``[T, B, C_out]``.

    Training (``sigma > 0``), the Gaussian interpolation of Hammouamri et al. (ICLR 2024, DCLS)::

        out[t, b, j] = sum_i w_ji sum_{k=0}^{D-1} g_ji(k) x[t - k, b, i],   D = max_delay
        g_ji(k) = exp(-((k - p_ji) / sigma)^2 / 2) / Z_ji,   Z_ji normalising over the D taps k = 0 .. D-1

    Inference (``sigma=None``): exact integer delays ``d_ji = round(p_ji)`` (half to even, clamped into
    [0, D-1]), ``out[t, b, j] = sum_i w_ji x[t - d_ji, b, i]``; the positions get no gradient.

    Each synapse only touches the taps inside its Gaussian's support (``taps.py``: the dropped mass is below
    2^-24 of the normalisation, so results equal the dense kernel's to float32 precision; 3 taps at sigma = 0.23) and
    one tap with integer delays: ``T B C_out C_in W`` multiply-adds instead of a dense convolution's ``... D``.

    Causal: ``x`` before ``t = 0`` is zero. The tail: contributions that would arrive after the last input step
    (``t + d > T - 1``) are dropped, so the output has the input's length T. To keep them, pad the input with
    ``max_delay - 1`` zero steps at the end (``torch.nn.functional.pad(x, (0, 0, 0, 0, 0, max_delay - 1))``).

    Args:
        x: input ``[T, B, C_in]``, float16/bfloat16/float32 (float64 on the torch backend), finite.
        weight: ``[C_out, C_in]`` synaptic weights.
        positions: ``[C_out, C_in]`` real-valued delays in time steps, finite; the layer
            (:class:`snnkit.layers.DelayedLinear`) keeps them in [0, max_delay - 1].
        max_delay: number of taps D >= 1 (delays 0 .. D-1).
        sigma: Gaussian width in steps (> 0) for training, or None for integer delays.
        backend: "auto" (Triton for CUDA tensors, except windows wider than ``TRITON_MAX_WIDTH_FRACTION`` of
            max_delay, which take the dense conv1d; else the torch path), "triton" (always the kernels: CUDA tensors,
            or CPU ones under ``TRITON_INTERPRET=1``) or "torch".

    Returns:
        ``[T, B, C_out]`` in ``x.dtype``.
    """
    max_delay, sigma = _check_inputs(x, weight, positions, max_delay, sigma)
    use_triton = _resolve_backend(backend, x)
    if x.numel() == 0 or weight.numel() == 0:  # B, C_in or C_out is 0: nothing to gather; keep the graph connected
        zero = (x.sum() + weight.sum()).to(x.dtype) * 0
        return x.new_zeros(x.shape[0], x.shape[1], weight.shape[0]) + zero
    start, width = tap_window(positions, max_delay, sigma)
    if backend == "auto" and width > TRITON_MAX_WIDTH_FRACTION * max_delay:
        use_triton = False
    # Coefficients in float32 (float64 for float64 inputs): the kernels accumulate in float32 whatever x's dtype.
    c = tap_coefficients(weight, positions, start, width, sigma, compute_dtype(x.dtype))
    return TapConv.apply(x, c, start, max_delay, use_triton)
