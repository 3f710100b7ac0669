"""``wkv``: the RWKV-4 weighted key-value recurrence (the attention of SpikeGPT's time mixing) as one op.

Everything about the op is in this folder (the layout of every snnkit op, see ``snnkit/ops/lif/``):

- ``naive.py``: the readable oracle, the stable recurrence step by step with autograd doing the backward;
- ``cpu.py``: the PyTorch path, forward scan and hand-written reverse scan vectorised over ``[B, C]`` (the backward
  equations and why nothing overflows are in its docstring);
- ``launch.py``: the Triton launchers of the kernels in ``triton_kernels/wkv.py`` (installed as ``snnkit.kernels``);
- ``function.py``: the ``torch.library`` custom ops with their fakes (``torch.compile(fullgraph=True)`` traces
  through), the NaN/inf checks, the ``autograd.Function`` and what each path keeps for the backward;
- this file: the validated public function.

The equation (Peng et al. 2023, RWKV; Zhu et al. 2023, SpikeGPT), per channel c, with ``w = -exp(time_decay) < 0``
and ``u = time_first``::

    y_t = (sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{(t-1-i) w + k_i} + e^{u + k_t})

State convention: after token t the op holds ``a_t = sum_{i<=t} e^{(t-i) w + k_i} v_i`` and the same sum ``b_t``
without ``v``, as ``(p, q, o)`` with ``a = p e^o``, ``b = q e^o`` and ``o`` the largest exponent so far (so ``p`` and
``q`` stay near 1). The empty state is ``p = q = 0``, ``o = -1e38`` (``-inf`` is accepted too). A state passed in
continues the sequence: ``y_t`` gains ``e^{t w} a_init`` in the numerator and ``e^{t w} b_init`` in the denominator,
so running a sequence in chunks, or token by token (``T = 1``, the RNN mode), carrying the state, gives the numbers
of one call over the whole sequence. Gradients reach ``p`` and ``q`` of the initial state; ``o`` is a shift held
constant (``dL/do`` is zero, and a gradient arriving at the returned state's ``o`` is ignored), which leaves every
gradient of ``y`` exact because ``y`` depends on ``a`` and ``b`` only.
"""

from __future__ import annotations

from typing import Optional

import torch

from ...validation import FLOAT_DTYPES, check_bool, check_tensor
from .._dispatch import use_triton
from .function import CHECKS, WKVFunction, acc_dtype
from .naive import O_INIT, wkv_naive

__all__ = ["wkv", "wkv_naive", "BACKENDS", "CHECKS", "O_INIT"]

BACKENDS = ("auto", "torch", "triton")


def _resolve_backend(backend: str, k: torch.Tensor, is_f64: bool) -> bool:
    """True when the Triton kernels run this call (the rules of every op's ``backend``, ``snnkit.ops._dispatch``)."""
    return use_triton(backend, k, op="wkv", choices=BACKENDS, name="k", float64=is_f64)


def wkv(
    w: torch.Tensor,
    u: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    state: Optional[torch.Tensor] = None,
    *,
    backend: str = "auto",
    check: str = "auto",
    recompute: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The WKV recurrence of RWKV-4 / SpikeGPT over a whole sequence (time first), computed without overflow.

    ``y_t = (sum_{i<t} e^{(t-1-i) w + k_i} v_i + e^{u + k_t} v_t) / (sum_{i<t} e^{(t-1-i) w + k_i} + e^{u + k_t})``
    per batch element and channel; see the module docstring for the state convention.

    Args:
        w: per-channel decay ``[C]``, already negative (SpikeGPT passes ``-exp(time_decay)``), finite.
        u: per-channel bonus of the current token (``time_first``) ``[C]``, finite.
        k: keys ``[T, B, C]``, finite, T >= 1.
        v: values ``[T, B, C]`` (same shape as ``k``), finite.
        state: None (start of the sequence) or ``(p, q, o)`` as ``[3, B, C]`` float32 (float64 when an input is
            float64), as returned by a previous call; differentiable in ``p`` and ``q``.
        backend: "auto" (Triton for CUDA tensors, the PyTorch path on CPU), "torch" (always the PyTorch path) or
            "triton" (the kernels; on CPU only under ``TRITON_INTERPRET=1``). float64 runs on "torch" only.
        check: NaN/inf in the inputs: "auto" ("sync" on CPU, "async" on CUDA), "sync" (ValueError at once),
            "async" (``torch._assert_async``, no host synchronisation) or "off".
        recompute: Triton path only: keep no per-token state between the forward and the backward (the backward
            reruns the forward scan, one more sequential pass over T) instead of 12 bytes per element and token.

    Returns:
        ``(y, new_state)``: ``y [T, B, C]`` in ``v.dtype``, and the state after the last token ``[3, B, C]`` in
        float32 (float64 for float64 inputs). Accumulation is float32 for float16/bfloat16/float32 inputs.
    """
    for name, t in (("k", k), ("v", v)):
        check_tensor(name, t)
        if t.dim() != 3:
            raise ValueError(f"{name} must be time-first [T, B, C], got shape {tuple(t.shape)}")
        check_tensor(name, t, time_first=True)
    if v.shape != k.shape:
        raise ValueError(f"v must have the shape of k {tuple(k.shape)}, got {tuple(v.shape)}")
    C = k.shape[2]
    for name, t in (("w", w), ("u", u)):
        check_tensor(name, t)
        if t.dim() != 1 or t.shape[0] != C:
            raise ValueError(f"{name} must have shape [C] = [{C}] (one value per channel of k), got "
                             f"{tuple(t.shape)}")
    is_f64 = acc_dtype(w, u, k, v) == torch.float64
    if state is not None:
        check_tensor("state", state, dtypes=FLOAT_DTYPES)
        want = (3,) + tuple(k.shape[1:])
        if tuple(state.shape) != want:
            raise ValueError(f"state must have shape [3, B, C] = {list(want)} (p, q, o), got {tuple(state.shape)}")
        acc = torch.float64 if is_f64 else torch.float32
        if state.dtype != acc:
            raise TypeError(f"state must be {str(acc).removeprefix('torch.')} (the accumulation dtype of these "
                            f"inputs), got {state.dtype}")
    for name, t in [("w", w), ("u", u), ("v", v)] + ([("state", state)] if state is not None else []):
        if t.device != k.device:
            raise ValueError(f"{name} is on {t.device} but k is on {k.device}")
    check_bool("recompute", recompute)
    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, got {check!r}")
    if check == "auto":
        check = "async" if k.is_cuda else "sync"
    use_triton = _resolve_backend(backend, k, is_f64)
    grad_needed = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (w, u, k, v, state))
    # the values (NaN/inf) are checked inside the forward op, where torch.compile does not trace
    return WKVFunction.apply(w, u, k, v, state, use_triton, grad_needed, recompute, check)
