"""The WKV op's ``torch.autograd.Function``: one autograd node for the whole sequence.

The forward is one scan (the Triton kernel on CUDA, ``cpu.py`` otherwise) and the backward one reverse scan with
the hand-derived gradients of ``cpu.py``'s docstring. What is saved differs by path:

- PyTorch path: the state before every token and the last one, ``[T + 1, 3, B, C]`` in the accumulation dtype, so
  the backward does not rerun the forward (CPU memory is cheap next to CPU time);
- Triton path: the same ``[T + 1, 3, B, C]`` float32 states, written by the forward kernel as it goes (12 bytes per
  element and token, the memory flash-linear-attention's RWKV-4 kernel keeps too), so the backward is one reverse
  scan; or, with ``recompute=True``, nothing but the inputs: the backward kernel reruns the forward scan into a
  temporary buffer and consumes it in reverse, so no per-token state lives between the forward and the backward
  of a model (the memory of the reference CUDA kernel, without its compile-time bound on T) at the price of a third
  sequential pass over T.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from . import cpu

__all__ = ["WKVFunction", "acc_dtype"]


def acc_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 when any input is float64 (the PyTorch path only), else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _raise_or_assert(ok: torch.Tensor, name: str, check: str) -> None:
    """Turn the device boolean ``ok`` into an error: at once ("sync") or queued on the device ("async")."""
    message = f"{name} contains NaN or inf; expected finite values"
    if check == "sync":
        if not bool(ok):
            raise ValueError(message)
    elif check == "async":
        torch._assert_async(ok, message)


class WKVFunction(torch.autograd.Function):
    """``apply(w, u, k, v, state, use_triton, save, recompute, check) -> (y, new_state)``; ``state`` None: empty.

    ``save``: a gradient will be asked for (decided by the caller: inside ``forward`` grad mode is always off).
    ``recompute`` (Triton path): keep no per-token state; the backward reruns the forward scan. ``check`` (Triton
    path): "sync", "async" or "off" for the kernel's own NaN/inf flags on ``k`` and ``v``.
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                state: Optional[torch.Tensor], use_triton: bool, save: bool, recompute: bool,
                check: str = "off") -> tuple[torch.Tensor, torch.Tensor]:
        acc = acc_dtype(w, u, k, v)
        has_state = state is not None
        ctx.set_materialize_grads(False)  # an output without a gradient arrives as None: the kernels skip it
        k, v = k.contiguous(), v.contiguous()
        if use_triton:
            from .launch import triton_forward

            state0 = state.contiguous() if has_state else None
            y, new_state, saved, bad = triton_forward(w, u, k, v, state0, save and not recompute, check != "off")
            if bad is not None:
                _raise_or_assert((bad & 1).max() == 0, "k", check)
                _raise_or_assert((bad & 2).max() == 0, "v", check)
        else:
            state0 = state.to(acc).contiguous() if has_state else cpu.initial_state(k, acc)
            y, new_state, saved = cpu.wkv_forward(w, u, k, v, state0, save)
            y = y.to(v.dtype)
        ctx.use_triton = use_triton
        ctx.has_state = has_state
        ctx.dtypes = (w.dtype, u.dtype, k.dtype, v.dtype, state.dtype if has_state else acc)
        if save:
            if use_triton:
                ctx.save_for_backward(w, u, k, v, state0, saved)
            else:
                ctx.save_for_backward(w, u, k, v, saved, None)
        return y, new_state

    @staticmethod
    @once_differentiable  # the backward scans run without autograd: a double backward must fail loudly
    def backward(ctx, grad_y: Optional[torch.Tensor], grad_state: Optional[torch.Tensor]):
        w, u, k, v, extra, states = ctx.saved_tensors
        grad_y = None if grad_y is None else grad_y.contiguous()
        grad_state = None if grad_state is None else grad_state.contiguous()
        if ctx.use_triton:
            from .launch import triton_backward

            gw, gu, gk, gv, gs = triton_backward(w, u, k, v, extra, states, grad_y, grad_state)
        else:
            gw, gu, gk, gv, gs = cpu.wkv_backward(w, u, k, v, extra, grad_y, grad_state)
        wd, ud, kd, vd, sd = ctx.dtypes
        return (gw.to(wd), gu.to(ud), gk.to(kd), gv.to(vd), gs.to(sd) if ctx.has_state else None, None, None, None, None)
