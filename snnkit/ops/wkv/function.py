"""The WKV op's dispatch: the ``torch.library`` custom ops with their fakes, the finiteness checks, and the
``torch.autograd.Function`` that makes the whole sequence one autograd node.

The forward is one scan (the Triton kernel on CUDA, ``cpu.py`` otherwise) and the backward one reverse scan with
the hand-derived gradients of ``cpu.py``'s docstring. Both are ``torch.library`` custom ops with fake (meta)
implementations, so ``torch.compile`` traces through the op without graph breaks and never unrolls its loop over
tokens. What is kept for the backward differs by path:

- PyTorch path: the state before every token and the last one, ``[T + 1, 3, B, C]`` in the accumulation dtype, so
  the backward does not rerun the forward (CPU memory is cheap next to CPU time);
- Triton path: the same ``[T + 1, 3, B, C]`` float32 states, written by the forward kernel as it goes (12 bytes per
  element and token, the memory flash-linear-attention's RWKV-4 kernel keeps too), so the backward is one reverse
  scan; or, with ``recompute=True``, nothing but the inputs: the backward kernel reruns the forward scan into a
  temporary buffer and consumes it in reverse, so no per-token state lives between the forward and the backward
  of a model (the memory of the reference CUDA kernel, without its compile-time bound on T) at the price of a third
  sequential pass over T.

Finiteness checks (``check``) run inside the forward op, before any computation on CPU: "sync" raises
``ValueError`` at once, "async" queues ``torch._assert_async`` (no host synchronisation on CUDA), "off" checks
nothing. On the Triton path ``k`` and ``v`` are checked by the forward kernel itself (a flag per program, computed
in registers) instead of by extra passes over them.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from ...validation import check_finite
from . import cpu
from .launch import triton_backward, triton_forward

__all__ = ["WKVFunction", "acc_dtype", "CHECKS"]

CHECKS = ("auto", "sync", "async", "off")


def acc_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 when any input is float64 (the PyTorch path only), else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _raise_or_assert(ok: torch.Tensor, message: str, check: str) -> None:
    """Turn the device boolean ``ok`` into an error: at once ("sync") or queued on the device ("async")."""
    if check == "sync":
        if not bool(ok):
            raise ValueError(message)
    elif check == "async":
        torch._assert_async(ok, message)


def _all_finite(named: list[tuple[str, torch.Tensor]], state: Optional[torch.Tensor]) -> bool:
    """One host read for every input, from each tensor's extremes (``aminmax``, one pass in its own dtype: NaN
    propagates, +-inf are the extremes, so the test is exact and bfloat16 inputs are not first summed in float32).
    The state's ``o`` may hold ``-inf`` (an empty state), so only its maximum must be neither NaN nor ``+inf``."""
    def extremes(t: torch.Tensor) -> torch.Tensor:
        if t.numel() == 0:
            return torch.zeros(2, dtype=torch.float64, device=t.device)
        return torch.stack(torch.aminmax(t.detach())).to(torch.float64)

    parts = [extremes(t) for _, t in named]
    if state is not None:
        parts.append(extremes(state[:2]))
    ok = torch.cat(parts).isfinite().all()
    if state is not None:
        o_max = extremes(state[2])[1]
        ok = ok & ~(o_max.isnan() | (o_max == float("inf")))
    return bool(ok)


def _check_values(named: list[tuple[str, torch.Tensor]], state: Optional[torch.Tensor], check: str) -> None:
    """NaN/inf in the named inputs and the state (whose ``o`` may be ``-inf``: an empty state)."""
    if check == "off" or (check == "sync" and _all_finite(named, state)):
        return  # the per-tensor checks below only run to name the culprit
    for name, t in named:
        if check == "sync":
            check_finite(name, t)
        else:
            _raise_or_assert(torch.isfinite(t).all(), f"{name} contains NaN or inf", check)
    if state is not None:
        _raise_or_assert(torch.isfinite(state[:2]).all(), "state[0:2] (p, q) contains NaN or inf", check)
        o = state[2]
        _raise_or_assert(~(torch.isnan(o) | (o == float("inf"))).any(),
                         "state[2] (o) contains NaN or +inf; expected finite values or -inf (empty state)", check)


@torch.library.custom_op("snnkit::wkv_forward", mutates_args=())
def _wkv_forward_op(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: Optional[torch.Tensor],
                    use_triton: bool, save: bool, recompute: bool, check: str
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y, new_state, states)``; ``states`` is empty when nothing is kept for the backward."""
    k, v = k.contiguous(), v.contiguous()
    if use_triton:
        _check_values([("w", w), ("u", u)], state, check)
        state0 = state.contiguous() if state is not None else None
        y, new_state, states, bad = triton_forward(w, u, k, v, state0, save and not recompute, check != "off")
        if bad is not None:
            _raise_or_assert((bad & 1).max() == 0, "k contains NaN or inf", check)
            _raise_or_assert((bad & 2).max() == 0, "v contains NaN or inf", check)
    else:
        _check_values([("w", w), ("u", u), ("k", k), ("v", v)], state, check)
        acc = acc_dtype(w, u, k, v)
        state0 = state.to(acc).contiguous() if state is not None else cpu.initial_state(k, acc)
        y, new_state, states = cpu.wkv_forward(w, u, k, v, state0, save)
        y = y.to(v.dtype)
    return y, new_state, states if states is not None else k.new_empty(0, dtype=new_state.dtype)


@_wkv_forward_op.register_fake
def _(w, u, k, v, state, use_triton, save, recompute, check):
    acc = acc_dtype(w, u, k, v)
    keeps = save and not (use_triton and recompute)
    T, B, C = k.shape
    return (torch.empty_like(v, memory_format=torch.contiguous_format), k.new_empty((3, B, C), dtype=acc),
            k.new_empty((T + 1, 3, B, C) if keeps else (0,), dtype=acc))


@torch.library.custom_op("snnkit::wkv_backward", mutates_args=())
def _wkv_backward_op(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     state: Optional[torch.Tensor], states: torch.Tensor, grad_y: Optional[torch.Tensor],
                     grad_state: Optional[torch.Tensor], use_triton: bool
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dL/dw, dL/du, dL/dk, dL/dv)`` in the inputs' dtypes and ``dL/dstate_0`` in the accumulation dtype."""
    k, v = k.contiguous(), v.contiguous()
    grad_y = None if grad_y is None else grad_y.contiguous()
    grad_state = None if grad_state is None else grad_state.contiguous()
    if use_triton:
        gw, gu, gk, gv, gs = triton_backward(w, u, k, v, None if state is None else state.contiguous(),
                                             states if states.numel() else None, grad_y, grad_state)
    else:
        gw, gu, gk, gv, gs = cpu.wkv_backward(w, u, k, v, states, grad_y, grad_state)
    return gw.to(w.dtype), gu.to(u.dtype), gk.to(k.dtype), gv.to(v.dtype), gs


@_wkv_backward_op.register_fake
def _(w, u, k, v, state, states, grad_y, grad_state, use_triton):
    acc = acc_dtype(w, u, k, v)
    return (torch.empty_like(w), torch.empty_like(u), torch.empty_like(k, memory_format=torch.contiguous_format),
            torch.empty_like(v, memory_format=torch.contiguous_format), k.new_empty((3,) + tuple(k.shape[1:]),
                                                                                      dtype=acc))


class WKVFunction(torch.autograd.Function):
    """``apply(w, u, k, v, state, use_triton, save, recompute, check) -> (y, new_state)``; ``state`` None: empty.

    ``save``: a gradient will be asked for (decided by the caller: inside ``forward`` grad mode is always off).
    ``recompute`` (Triton path): keep no per-token state; the backward reruns the forward scan. ``check``: "sync",
    "async" or "off" (resolved from "auto").
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                state: Optional[torch.Tensor], use_triton: bool, save: bool, recompute: bool,
                check: str = "off") -> tuple[torch.Tensor, torch.Tensor]:
        ctx.set_materialize_grads(False)  # an output without a gradient arrives as None: the kernels skip it
        y, new_state, states = torch.ops.snnkit.wkv_forward(w, u, k, v, state, use_triton, save, recompute, check)
        ctx.use_triton = use_triton
        ctx.has_state = state is not None
        if save:
            ctx.save_for_backward(w, u, k, v, state, states)
        return y, new_state

    @staticmethod
    @once_differentiable  # the backward scans run without autograd: a double backward must fail loudly
    def backward(ctx, grad_y: Optional[torch.Tensor], grad_state: Optional[torch.Tensor]):
        w, u, k, v, state, states = ctx.saved_tensors
        gw, gu, gk, gv, gs = torch.ops.snnkit.wkv_backward(w, u, k, v, state, states, grad_y, grad_state,
                                                           ctx.use_triton)
        return gw, gu, gk, gv, gs.to(state.dtype) if ctx.has_state else None, None, None, None, None
