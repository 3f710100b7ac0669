"""Triton launchers of the WKV op: allocate outputs, pick the constexpr flags, launch ``snnkit.kernels.wkv``.

No autograd and no validation here (``function.py`` and ``__init__.py`` do those), and no host synchronisation.
One program per (batch element, ``BLOCK_C`` channels) with one warp: the scan is sequential in T, so the B x C
lanes are all the parallelism there is, and small programs spread them over every SM (B = 8, C = 768 gives 192
programs of 32 lanes).
"""

from __future__ import annotations

from typing import Optional

import torch

from .._dispatch import load_kernels

__all__ = ["triton_forward", "triton_backward", "kernels", "BLOCK_C", "NUM_WARPS"]

BLOCK_C = 32
NUM_WARPS = 1


def kernels():
    """``snnkit.kernels.wkv``, imported on first use so that ``import snnkit`` never imports triton."""
    return load_kernels("wkv")


def triton_forward(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   state: Optional[torch.Tensor], save: bool, check: bool
                   ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """``(y [T, B, C] in v.dtype, new state [3, B, C] float32, states [T + 1, 3, B, C] float32 or None, bad)``.

    ``k, v`` contiguous, ``state`` float32 or None. With ``save`` the kernel also writes the state before every
    token and the final one (12 bytes per element and token) for :func:`triton_backward`. With ``check``, ``bad``
    holds one int32 per program: bit 0 set where ``k`` held NaN/inf, bit 1 for ``v`` (else None).
    """
    kern = kernels()
    T, B, C = k.shape
    y = torch.empty_like(v)
    new_state = torch.empty((3, B, C), dtype=torch.float32, device=k.device)
    states = torch.empty((T + 1, 3, B, C), dtype=torch.float32, device=k.device) if save else None
    if B * C == 0:  # no lanes: nothing to launch
        return y, new_state, states, None
    grid = kern.grid(B, C, BLOCK_C)
    bad = torch.empty(grid, dtype=torch.int32, device=k.device) if check else None  # every program writes its flag
    kern.wkv_forward_kernel[grid](
        w.contiguous(), u.contiguous(), k, v, y, state if state is not None else new_state, new_state,
        states if save else new_state, bad if check else new_state, T, B * C, C, HAS_STATE=state is not None,
        SAVE=save, CHECK=check, BLOCK_C=BLOCK_C, num_warps=NUM_WARPS,
    )
    return y, new_state, states, bad


def triton_backward(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    state: Optional[torch.Tensor], states: Optional[torch.Tensor], grad_y: Optional[torch.Tensor],
                    grad_state: Optional[torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dL/dw [C], dL/du [C] float32, dL/dk, dL/dv [T, B, C] in k's / v's dtype, dL/dstate_0 [3, B, C] float32)``.

    ``states`` is the forward's save; None reruns the forward scan into a float32 scratch buffer of ``12 T B C``
    bytes, freed on return (``state`` is the initial state, None for the empty one).
    """
    kern = kernels()
    T, B, C = k.shape
    dev = k.device
    recompute = states is None
    if recompute:
        states = torch.empty((T, 3, B, C), dtype=torch.float32, device=dev)
    gk = torch.empty_like(k)
    gv = torch.empty_like(v)
    gw = torch.empty((B, C), dtype=torch.float32, device=dev)
    gu = torch.empty((B, C), dtype=torch.float32, device=dev)
    gs0 = torch.empty((3, B, C), dtype=torch.float32, device=dev)
    if B * C == 0:  # no lanes: every gradient is empty or zero
        return gw.new_zeros(C), gu.new_zeros(C), gk, gv, gs0
    end = (T - 1) * B * C  # Python ints: Triton passes them as int64 when they exceed int32
    kern.wkv_backward_kernel[kern.grid(B, C, BLOCK_C)](
        w.contiguous(), u.contiguous(), k, v, grad_y if grad_y is not None else k,
        state if state is not None else gs0, grad_state if grad_state is not None else gs0, states,
        gk, gv, gw, gu, gs0, T, B * C, C, end, 3 * end,
        HAS_STATE=state is not None, HAS_GY=grad_y is not None, HAS_GS=grad_state is not None,
        RECOMPUTE=recompute, BLOCK_C=BLOCK_C, num_warps=NUM_WARPS,
    )
    return gw.sum(0), gu.sum(0), gk, gv, gs0
