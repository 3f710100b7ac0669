"""Triton launchers of the LIF op: allocate outputs, pick the constexpr flags, launch ``snnkit.kernels.lif``.

No autograd and no validation here (``function.py`` and ``__init__.py`` do those), and no host synchronisation:
the forward kernel flags non-finite inputs in a per-program int32 tensor that :func:`check_flags` turns into an
error without reading it back to the host unless the caller asked for ``check="sync"``.
"""

from __future__ import annotations

from typing import Optional

import torch

from ...surrogate import surrogate_constants
from .._dispatch import load_kernels

__all__ = ["triton_forward", "triton_backward", "kernels", "BLOCK", "NUM_WARPS"]

BLOCK = 1024
NUM_WARPS = 4


def kernels():
    """``snnkit.kernels.lif``, imported on first use so that ``import snnkit`` never imports triton."""
    return load_kernels("lif")


def triton_forward(x: torch.Tensor, v0: Optional[torch.Tensor], tau_t: Optional[torch.Tensor], inv_tau: float,
                   v_threshold: Optional[float], v_reset: Optional[float], decay_input: bool, store_v_seq: bool,
                   compact: bool, save: bool, v_last_dtype: torch.dtype
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns ``(out, v_out, saved, bad)``; ``bad`` holds one int32 flag per program (1: a non-finite input)."""
    kern = kernels()
    spiking = v_threshold is not None
    compact = compact and spiking
    T = x.shape[0]
    x2 = x.reshape(T, -1)
    n = x2.shape[1]
    out = torch.empty_like(x)
    v_out = torch.empty(x.shape if store_v_seq else x.shape[1:], dtype=v_last_dtype, device=x.device)
    saved = torch.empty(x.shape if save else (0,), dtype=torch.float16 if compact else torch.float32, device=x.device)
    grid = kern.grid_size(n, BLOCK)
    bad = torch.empty(grid, dtype=torch.int32, device=x.device)  # every program writes its flag
    kern.lif_forward_kernel[(grid,)](
        x2, v0 if v0 is not None else x2, tau_t if tau_t is not None else x2, out, v_out, saved if save else x2,
        bad, T, n, inv_tau, 0.0 if v_threshold is None else v_threshold, 0.0 if v_reset is None else v_reset,
        SPIKING=spiking, HAS_V0=v0 is not None, TAU_FROM_PTR=tau_t is not None, HARD_RESET=v_reset is not None,
        DECAY_INPUT=decay_input, STORE_V_SEQ=store_v_seq, SAVE=save, COMPACT=compact, BLOCK=BLOCK,
        num_warps=NUM_WARPS,
    )
    return out, v_out, saved, bad


def triton_backward(grad_out: Optional[torch.Tensor], grad_v: Optional[torch.Tensor], saved: torch.Tensor,
                    v0: Optional[torch.Tensor], inv_tau: float, tau_t: Optional[torch.Tensor],
                    v_threshold: Optional[float], v_reset: Optional[float], decay_input: bool, detach_reset: bool,
                    surrogate_id: int, alpha: float, store_v_seq: bool, compact: bool, tau_grad: bool,
                    x_dtype: torch.dtype, shape: tuple[int, ...], uniform_out: bool = False, uniform_v: bool = False,
                    v0_grad: bool = True, inv_sigma: Optional[torch.Tensor] = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Returns ``(dL/dx, dL/dv0 in float32, dL/dk)`` for the reverse scan (see ``cpu.py`` for the equations).

    ``uniform_out`` / ``uniform_v``: that gradient is a one-element tensor holding the value broadcast everywhere.
    ``v0_grad=False`` skips writing dL/dv0 (the returned tensor is then left unwritten). ``inv_sigma`` ``[T, C]``
    float32 (PDSG): the measured ``1 / sigma`` per step and channel (dim 2 of ``shape``), read per element.
    """
    kern = kernels()
    spiking = v_threshold is not None
    compact = compact and spiking
    T = shape[0]
    n = 1
    for d in shape[1:]:
        n *= d
    device = saved.device
    grad_x = torch.empty(shape, dtype=x_dtype, device=device)
    grad_v0 = torch.empty(shape[1:] if v0_grad else (0,), dtype=torch.float32, device=device)
    grid = kern.grid_size(n, BLOCK)
    grad_k = torch.zeros(grid if tau_grad else 1, dtype=torch.float32, device=device)
    c1, c2 = surrogate_constants(surrogate_id, alpha) if spiking else (0.0, 0.0)
    dummy = grad_x
    channels = shape[2] if len(shape) >= 3 else 1
    inner = 1
    for d in shape[3:]:
        inner *= d
    sig = inv_sigma.to(torch.float32).contiguous() if inv_sigma is not None else dummy
    kern.lif_backward_kernel[(grid,)](
        grad_out if grad_out is not None else dummy, grad_v if grad_v is not None else dummy,
        saved if saved.numel() else dummy, v0 if v0 is not None else dummy, tau_t if tau_t is not None else dummy,
        grad_x, grad_v0, grad_k,
        sig, T, n, inv_tau, 0.0 if v_threshold is None else v_threshold, 0.0 if v_reset is None else v_reset, c1, c2,
        channels, inner, SG_ID=surrogate_id, SPIKING=spiking, HAS_GS=grad_out is not None, HAS_GV=grad_v is not None,
        HAS_V0=v0 is not None, TAU_FROM_PTR=tau_t is not None, HARD_RESET=v_reset is not None,
        DETACH_RESET=detach_reset, DECAY_INPUT=decay_input, STORE_V_SEQ=store_v_seq, COMPACT=compact,
        TAU_GRAD=tau_grad, UNIFORM_GS=uniform_out, UNIFORM_GV=uniform_v, WRITE_GV0=v0_grad, BLOCK=BLOCK,
        num_warps=NUM_WARPS,
    )
    return grad_x, grad_v0, grad_k.sum()
