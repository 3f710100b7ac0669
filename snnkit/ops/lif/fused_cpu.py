"""The LIF op's fused CPU path: the loops of ``cpu.py`` written per step over a fixed chunk of time steps and compiled
by ``torch.compile`` (inductor's C++ backend), so that a whole chunk becomes one loop over neurons with the state in
registers, as the Triton kernels do on a GPU.

Why: the CPU loop makes about 5 elementwise passes over memory per step in the forward and 13 in the backward; the op
itself only needs to move ``4b + 2S`` bytes per neuron-step (``docs/lif.md``). A chunk of :data:`CHUNK` steps
compiled into one loop reads ``x`` and writes spikes and the save once, and the state ``v`` (or the backward's carry)
crosses memory once per chunk instead of a few times per step.

How:

- The math is ``cpu.py``'s, operation by operation (its docstring has the equations), on ``[C, N]`` views of the
  flattened ``[T, N]`` problem, with a float32 state for float32/bfloat16/float16 inputs. The one multiply-add the
  CPU loop rounds once (``v + (x - (v - v_reset)) k`` with a float ``tau``: ATen's ``add(..., alpha=k)`` is an FMA)
  is computed here in float64 and rounded once to float32, which is the FMA's result (the float32 product is exact
  in float64; the sum could round differently only on a double-rounding tie, about 2^-29 of cases), so spikes are
  those of the loop. Inductor's C++ code is compiled without contraction (``-ffp-contract=off``); every other
  forward operation rounds as the loop does. The backward agrees to about 1e-7 relative (the loop's ``addcmul`` and
  ``sigmoid`` may round differently from inductor's).
- ``T`` is served as full chunks of :data:`CHUNK` steps plus single steps for the remainder, the state carried
  between calls: two compiled graphs per direction and configuration at most, whatever ``T``.
- Scalars (``1/tau``, thresholds, surrogate constants) are passed as one small float32 tensor, and the neuron
  dimension is marked dynamic, so a new ``tau``, batch or layer width reuses the compiled code. A configuration is
  the set of flags (reset mode, ``decay_input``, ``detach_reset``, surrogate, ``store_v_seq``, storage, which
  gradients arrive, learnable tau) and dtypes; each gets its own compiled functions, cached in
  :data:`_COMPILED` for the process and by inductor on disk (its FX graph and code caches) for later processes,
  DataLoader and DDP workers.
- :func:`available` probes once per process, lazily, whether inductor can build C++ here (a C++ compiler and its
  headers): it compiles a tiny function. On failure it warns once and the op keeps the loop.

Not handled here (the dispatch in ``function.py`` keeps the loop for them): float64 inputs (the FMA emulation above
needs a wider type) and problems of one neuron (``N == 1``, where the neuron dimension cannot be marked dynamic).
"""

from __future__ import annotations

import math
import threading
import types
import warnings
from typing import Callable, Optional

import torch

from .._buffers import CPUBufferPool
from ...surrogate import ATAN_ID, RECTANGLE_ID, SIGMOID_ID, TRIANGLE_ID, surrogate_constants
from .cpu import FP16_MAX, FP16_MIN_NORMAL

__all__ = ["CHUNK", "MIN_NEURON_STEPS", "available", "supports", "pays", "lif_forward_fused", "lif_backward_fused",
           "warm_up_fused", "compiled_configurations"]

#: Time steps compiled into one loop over neurons. Longer chunks move the state through memory less often but compile
#: for longer (the graph is unrolled); 8 keeps the state's traffic at 1/8 of a step's and a compile at a few seconds.
CHUNK = 8

#: ``backend="auto"`` takes the fused path on CPU from this many neuron-steps (``T * N``, ``N`` the neurons times
#: the batch) on: 2^20, where the loop takes about 100 ms per forward+backward on a 2-core machine and the
#: one-off compile (about 10-20 s per configuration, see ``docs/lif.md``) is paid back within a few hundred calls.
MIN_NEURON_STEPS = 2**20

# Indices into the float32 scalar tensor handed to every compiled chunk.
_K, _ONE_MINUS_K, _VTH, _VR, _C1, _C2 = range(6)

_COMPILED: dict[tuple, Callable] = {}
_READY: set[tuple] = set()  # keys whose first call (the compile) succeeded
_LOCK = threading.Lock()
_AVAILABLE: Optional[bool] = None


class FusedUnavailable(RuntimeError):
    """The fused path could not compile a configuration; the caller runs the CPU loop instead."""


def available() -> bool:
    """Whether inductor can compile C++ here; probed once per process (a tiny function), warns once if not."""
    global _AVAILABLE
    if _AVAILABLE is None:
        with _LOCK:
            if _AVAILABLE is None:
                _AVAILABLE = _probe()
    return _AVAILABLE


def _unavailable_warning(e: BaseException) -> None:
    text = str(e).strip()
    warnings.warn(
        "snnkit: the LIF op's fused CPU path is unavailable (torch.compile could not build C++ code here: "
        f"{type(e).__name__}: {text.splitlines()[0][:300] if text else ''}); using the plain CPU loop, which "
        "computes the same function more slowly. Install a C++ compiler (g++ or clang++) to enable it, or pass "
        "backend='torch' to use the loop without trying.",
        RuntimeWarning,
        stacklevel=4,
    )


def _probe() -> bool:
    try:
        fn = torch.compile(_probe_fn, backend="inductor", fullgraph=True)
        out = fn(torch.arange(4.0))
        if not torch.equal(out, torch.arange(4.0) * 2 + 1):
            raise RuntimeError("the compiled probe returned a wrong result")
        return True
    except Exception as e:  # no compiler, no headers, a broken toolchain: the loop stays correct
        _unavailable_warning(e)
        return False


def _probe_fn(x: torch.Tensor) -> torch.Tensor:
    return x * 2 + 1


def supports(shape, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the fused path runs an input ``x`` of this shape, dtype and device: CPU, float32/bfloat16/float16,
    more than one neuron (``x[0].numel() > 1``)."""
    return (torch.device(device).type == "cpu" and dtype in (torch.float32, torch.bfloat16, torch.float16)
            and math.prod(shape[1:]) > 1)


def pays(shape, dtype: torch.dtype, device: torch.device) -> bool:
    """``backend="auto"``'s rule on CPU: :func:`supports`, at least :data:`MIN_NEURON_STEPS` neuron-steps, and a
    working C++ compiler (:func:`available`)."""
    return supports(shape, dtype, device) and math.prod(shape) >= MIN_NEURON_STEPS and available()


def compiled_configurations() -> list[tuple]:
    """The configuration keys compiled in this process (for tests and diagnostics)."""
    return list(_COMPILED)


# --------------------------------------------------------------------------------------------------------------------
# The per-step math on [C, N] chunks: written as plain PyTorch, compiled per configuration.


def _charge(x_t, v, p, decay_input: bool, tau_tensor: bool):
    k, vr = p[_K], p[_VR]
    if decay_input:
        a = x_t - (v - vr)
        if tau_tensor:
            return a * k + v  # the loop: h.mul_(k).add_(v)
        # The loop's add(v, a, alpha=k) is one FMA; float64 holds the float32 product exactly: one rounding.
        return (v.double() + a.double() * k.double()).float()
    return v - (v - vr) * k + x_t


def _compact(u, s):
    return torch.where(s, u.clamp(FP16_MIN_NORMAL, FP16_MAX), u.clamp(-FP16_MAX, -FP16_MIN_NORMAL)).half()


def _forward_chunk(xs, outs, saves, v_seq, v, p, spiking: bool, hard: bool, decay_input: bool, tau_tensor: bool,
                   compact: bool):
    """Steps ``xs`` (one ``[N]`` tensor per step) from the state ``v [N]`` (float32); writes each step's ``outs``,
    ``saves`` and ``v_seq`` (lists of ``[N]`` views, the last two may be empty) and returns the state after."""
    for t in range(len(xs)):
        h = _charge(xs[t].float(), v, p, decay_input, tau_tensor)
        if spiking:
            vth = p[_VTH]
            u = h - vth
            s = h >= vth
            outs[t].copy_(s)
            if saves:
                saves[t].copy_(_compact(u, s) if compact else h)
            v = torch.where(s, p[_VR], h) if hard else torch.where(s, u, h)
        else:
            outs[t].copy_(h)
            if saves:
                saves[t].copy_(h)
            v = h
        if v_seq:
            v_seq[t].copy_(v)
    return v


def _surrogate(u, p, sg_id: int):
    c1, c2 = p[_C1], p[_C2]
    if sg_id == ATAN_ID:
        z = u * c1
        return c2 / (z * z + 1)
    if sg_id == SIGMOID_ID:
        sig = torch.sigmoid(u * c1)
        return (sig - sig * sig) * c2
    if sg_id == TRIANGLE_ID:
        return (c1 - u.abs() * c2).clamp_min(0)
    if sg_id == RECTANGLE_ID:
        return torch.where(u.abs() < c2, c1, 0.0)
    raise ValueError(f"unknown surrogate id {sg_id}")


def _unpack(saved_t, p, compact: bool):
    if compact:
        u = saved_t.float()
        return u + p[_VTH], u, u >= 0
    u = saved_t - p[_VTH]
    return saved_t, u, u >= 0


def _state_after(saved_t, p, spiking: bool, hard: bool, compact: bool):
    """``v_t`` rebuilt from step t's save."""
    if not spiking:
        return saved_t
    h, u, s = _unpack(saved_t, p, compact)
    return torch.where(s, p[_VR], h) if hard else torch.where(s, u, h)


def _backward_chunk(g_out, g_v, saves, grad_x, carry, v_start, p, spiking: bool, hard: bool, decay_input: bool,
                    detach_reset: bool, sg_id: int, compact: bool, tau_grad: bool, uniform_out: bool,
                    uniform_v: bool):
    """Reverse scan over a chunk of ``len(grad_x)`` steps, each argument list holding one ``[N]`` view per step.

    ``carry [N]`` (float32) is dL/dv arriving from the chunk after; returns the carry before the chunk and
    ``sum dL/dh dh/dk`` over the chunk (tau gradient only, else None). ``g_out`` (dL/dout) and ``g_v`` (dL/dv_t,
    ``store_v_seq`` only) may be empty lists, or one one-element tensor when uniform; ``v_start`` is the potential
    before the chunk (tau gradient only). Writes ``grad_x``.
    """
    k, omk = p[_K], p[_ONE_MINUS_K]
    acc = None
    for t in range(len(grad_x) - 1, -1, -1):
        if g_v:
            carry = carry + (g_v[0] if uniform_v else g_v[t]).float()
        if g_out:
            go = (g_out[0] if uniform_out else g_out[t]).float()
        h = saves[t] if saves else None
        if not spiking:
            gh = carry + go if g_out else carry
        else:
            h, u, s = _unpack(saves[t], p, compact)
            sg = _surrogate(u, p, sg_id)
            if hard:
                r = torch.logical_not(s).float()
                if not detach_reset:
                    r = r + (p[_VR] - h) * sg
                gh = carry * r
            elif detach_reset:
                gh = carry
            else:
                gh = carry * (1.0 - sg * p[_VTH])
            if g_out:
                gh = gh + go * sg
        grad_x[t].copy_(gh * k if decay_input else gh)
        carry = gh * omk
        if tau_grad:
            v_prev = v_start if t == 0 else _state_after(saves[t - 1], p, spiking, hard, compact)
            dh_dk = (h - v_prev) / k if decay_input else -(v_prev - p[_VR])
            acc = gh * dh_dk if acc is None else acc + gh * dh_dk
    return carry, (acc.sum() if tau_grad else None)


# --------------------------------------------------------------------------------------------------------------------
# Compilation and the cache.


def _compiled(key: tuple, fn: Callable, flags: dict) -> Callable:
    """``fn`` with ``flags`` bound, compiled once per ``key``.

    Each configuration gets its own code object (a renamed copy of a small wrapper): dynamo keeps its compiled
    graphs per code object and caps their number (``recompile_limit``), so configurations sharing one would evict
    each other.
    """
    compiled = _COMPILED.get(key)
    if compiled is None:
        with _LOCK:
            compiled = _COMPILED.get(key)
            if compiled is None:
                name = f"{fn.__name__}_{len(_COMPILED)}"

                def run(*args):
                    return fn(*args, **flags)

                code = run.__code__.replace(co_name=name)
                if hasattr(code, "co_qualname"):
                    code = code.replace(co_qualname=name)
                run = types.FunctionType(code, run.__globals__, name, None, run.__closure__)
                compiled = torch.compile(run, backend="inductor", fullgraph=True)
                _COMPILED[key] = compiled
    return compiled


def _first_call(key: tuple, fn: Callable, *args):
    """``fn(*args)``; the first call of a configuration compiles it, and a failure there turns the fused path off for
    the process (one warning) and raises :class:`FusedUnavailable`, on which the caller runs the loop."""
    if key in _READY:
        return fn(*args)
    global _AVAILABLE
    try:
        with warnings.catch_warnings():
            # Inductor's note on a graph that holds bfloat16 inputs and float16 saves (compact storage): expected.
            warnings.filterwarnings("ignore", message="bf16 and fp16 are mixed")
            result = fn(*args)
    except Exception as e:
        if _AVAILABLE:
            _AVAILABLE = False
            _unavailable_warning(e)
        raise FusedUnavailable(str(e)) from e
    _READY.add(key)
    return result


def _mark(*tensors) -> None:
    """The neuron dimension (last) is dynamic: one graph for every batch size and layer width."""
    for t in tensors:
        if t is not None and t.dim() >= 1 and t.shape[-1] > 1:
            torch._dynamo.maybe_mark_dynamic(t, t.dim() - 1)


def _scalars(k, v_threshold: Optional[float], v_reset: Optional[float], c1: float = 0.0, c2: float = 0.0
             ) -> torch.Tensor:
    """The float32 scalars of one call, rounded as the CPU loop rounds its Python-float operands."""
    vth = 0.0 if v_threshold is None else v_threshold
    vr = 0.0 if v_reset is None else v_reset
    if isinstance(k, torch.Tensor):
        k32 = k.detach().to(torch.float32).reshape(())
        rest = torch.tensor([vth, vr, c1, c2], dtype=torch.float32)
        return torch.cat([k32.reshape(1), (1 - k32).reshape(1), rest])
    return torch.tensor([k, 1 - k, vth, vr, c1, c2], dtype=torch.float32)


_HUGE = 2**21  # bytes in a transparent huge page (x86-64, arm64 with 4 KiB pages)
_MADVISE = None


def _fresh(shape, dtype: torch.dtype) -> torch.Tensor:
    """``torch.empty`` whose untouched pages are marked for transparent huge pages (Linux ``madvise``).

    The op's outputs are fresh multi-MB buffers; filling them page by page costs more than the fused loop itself
    (a first write into a new 64 MiB buffer ran at about 3.5 GB/s in 4 KiB pages on a 2-core VM, and at 23 GB/s in
    2 MiB pages). The hint covers only this buffer's whole huge pages and is skipped where unsupported.
    """
    t = torch.empty(shape, dtype=dtype)
    nbytes = t.numel() * t.element_size()
    if nbytes >= 2 * _HUGE:
        madvise = _madvise()
        if madvise is not None:
            start = -(-t.data_ptr() // _HUGE) * _HUGE
            end = (t.data_ptr() + nbytes) // _HUGE * _HUGE
            if end > start:
                madvise(start, end - start, 14)  # MADV_HUGEPAGE; a failure (EINVAL, ...) changes nothing
    return t


#: The fused path's outputs (spikes, saves, input gradients) come from this pool: the previous call's buffers, once
#: nothing refers to them, instead of fresh pages (see :mod:`snnkit.ops._buffers`).
BUFFERS = CPUBufferPool(allocate=_fresh)


def _empty(shape, dtype: torch.dtype) -> torch.Tensor:
    return BUFFERS.empty(shape, dtype)


def release_buffers() -> int:
    """Give the fused CPU path's pooled output buffers that no tensor uses back to the system; returns the bytes."""
    return BUFFERS.release()


def _madvise():
    global _MADVISE
    if _MADVISE is None:
        _MADVISE = False
        try:
            import ctypes
            import sys

            if sys.platform.startswith("linux"):
                fn = ctypes.CDLL(None, use_errno=True).madvise
                fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                fn.restype = ctypes.c_int
                _MADVISE = fn
        except Exception:  # no libc symbol: keep 4 KiB pages
            pass
    return _MADVISE or None


def _steps(a: torch.Tensor, t0: int, c: int) -> list[torch.Tensor]:
    """Steps ``t0 .. t0 + c - 1`` of the contiguous ``a [T, N]``, one ``[N]`` tensor per step sharing ``a``'s memory.

    One graph input per step, written in place: inductor then stores every step's result straight into the caller's
    buffers from the one fused loop (a ``[C, N]`` input written row by row is realised and copied instead). Each
    step is a tensor of its own over a slice of ``a``'s storage, at storage offset 0: a plain view would carry its
    offset into the graph's guards, and dynamo specialises an offset of 0, which would give the first chunk (offset
    0) a graph of its own.
    """
    storage, n, size = a.untyped_storage(), a.shape[1], a.element_size()
    start = a.storage_offset()
    return [a.new_empty(0).set_(storage[(start + t * n) * size:(start + (t + 1) * n) * size], 0, (n,), (1,))
            for t in range(t0, t0 + c)]


def _chunks(T: int):
    """``(start, length)`` of the chunks covering ``T`` steps: full chunks, then single steps."""
    full = T - T % CHUNK
    for t0 in range(0, full, CHUNK):
        yield t0, CHUNK
    for t0 in range(full, T):
        yield t0, 1


@torch.no_grad()
def lif_forward_fused(
    x: torch.Tensor,
    v0: Optional[torch.Tensor],
    inv_tau: float | torch.Tensor,
    v_threshold: Optional[float],
    v_reset: Optional[float],
    decay_input: bool,
    store_v_seq: bool,
    compact: bool,
    save: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`snnkit.ops.lif.cpu.lif_forward_cpu`, fused: same arguments, same results (``x`` contiguous)."""
    spiking = v_threshold is not None
    compact = compact and spiking
    T = x.shape[0]
    x2 = x.reshape(T, -1)
    n = x2.shape[1]
    vr = 0.0 if v_reset is None else v_reset
    v = torch.full((n,), vr, dtype=torch.float32) if v0 is None else v0.detach().reshape(n).to(torch.float32, copy=True)
    out = _empty(x2.shape, x.dtype)
    v_seq = _empty(x2.shape, x.dtype if v0 is None else v0.dtype) if store_v_seq else None
    saved = _empty(x2.shape if save else (0,), torch.float16 if compact else torch.float32)
    p = _scalars(inv_tau, v_threshold, v_reset)
    flags = dict(spiking=spiking, hard=v_reset is not None, decay_input=decay_input,
                 tau_tensor=isinstance(inv_tau, torch.Tensor), compact=compact)
    key = ("forward", x.dtype, None if v_seq is None else v_seq.dtype, save, *sorted(flags.items()))
    fn = _compiled(key, _forward_chunk, flags)
    for t0, c in _chunks(T):
        xs, os_ = _steps(x2, t0, c), _steps(out, t0, c)
        ss = _steps(saved, t0, c) if save else []
        vs = _steps(v_seq, t0, c) if store_v_seq else []
        _mark(*xs, *os_, *ss, *vs, v)
        v = _first_call((key, c), fn, xs, os_, ss, vs, v, p)
    shape = x.shape
    return out.view(shape), (v_seq.view(shape) if store_v_seq else v.view(shape[1:])), (
        saved.view(shape) if save else saved)


@torch.no_grad()
def lif_backward_fused(
    grad_out: Optional[torch.Tensor],
    grad_v: Optional[torch.Tensor],
    saved: torch.Tensor,
    v0: Optional[torch.Tensor],
    inv_tau: float | torch.Tensor,
    v_threshold: Optional[float],
    v_reset: Optional[float],
    decay_input: bool,
    detach_reset: bool,
    surrogate_id: int,
    alpha: float,
    store_v_seq: bool,
    compact: bool,
    tau_grad: bool,
    x_dtype: torch.dtype,
    shape: tuple[int, ...],
    uniform_out: bool = False,
    uniform_v: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`snnkit.ops.lif.cpu.lif_backward_cpu`, fused. ``grad_out``/``grad_v`` are contiguous, or with
    ``uniform_out``/``uniform_v`` one-element tensors holding the value broadcast everywhere."""
    spiking = v_threshold is not None
    compact = compact and spiking
    hard = v_reset is not None
    T = shape[0]
    n = math.prod(shape[1:])
    c1, c2 = surrogate_constants(surrogate_id, alpha) if spiking else (0.0, 0.0)
    p = _scalars(inv_tau, v_threshold, v_reset, c1, c2)
    grad_x = _empty((T, n), x_dtype)
    carry = torch.zeros(n, dtype=torch.float32)
    if grad_v is not None and not store_v_seq:
        carry.add_(grad_v.reshape(-1).to(torch.float32))  # uniform: a one-element tensor, broadcast
    go = None if grad_out is None else grad_out.reshape(1 if uniform_out else (T, n))
    gv = None if (grad_v is None or not store_v_seq) else grad_v.reshape(1 if uniform_v else (T, n))
    sv = saved.reshape(T, n) if saved.numel() else None
    flags = dict(spiking=spiking, hard=hard, decay_input=decay_input, detach_reset=detach_reset and spiking,
                 sg_id=surrogate_id if spiking else -1, compact=compact, tau_grad=tau_grad,
                 uniform_out=uniform_out and go is not None, uniform_v=uniform_v and gv is not None)
    key = ("backward", x_dtype, None if go is None else go.dtype, None if gv is None else gv.dtype, sv is not None,
           *sorted(flags.items()))
    fn = _compiled(key, _backward_chunk, flags)
    grad_k = torch.zeros((), dtype=torch.float32)
    vr = 0.0 if v_reset is None else v_reset
    for t0, c in reversed(list(_chunks(T))):
        gos = [] if go is None else ([go] if uniform_out else _steps(go, t0, c))
        gvs = [] if gv is None else ([gv] if uniform_v else _steps(gv, t0, c))
        ss = [] if sv is None else _steps(sv, t0, c)
        v_start = None
        if tau_grad:
            if t0 == 0:
                v_start = (v0.detach().reshape(n).to(torch.float32, copy=True) if v0 is not None
                           else torch.full((n,), vr, dtype=torch.float32))
            else:
                v_start = _state_after(sv[t0 - 1], p, spiking, hard, compact)
        gxs = _steps(grad_x, t0, c)
        _mark(*([] if uniform_out else gos), *([] if uniform_v else gvs), *ss, *gxs, carry, v_start)
        carry, part = _first_call((key, c), fn, gos, gvs, ss, gxs, carry, v_start, p)
        if tau_grad:
            grad_k = grad_k + part
    return grad_x.view(shape), carry.view(shape[1:]), grad_k


def warm_up_fused(
    *,
    dtype: torch.dtype = torch.float32,
    v_threshold: Optional[float] = 1.0,
    v_reset: Optional[float] = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate=None,
    store_v_seq: bool = False,
    storage: str = "exact",
    learnable_tau: bool = False,
    with_v0: bool = False,
    backward: bool = True,
) -> bool:
    """Compile the fused CPU path for one configuration now (forward and, with ``backward``, the backward as a loss
    on the spikes and potentials sends it), instead of on the first large call. Returns False where the fused path is
    unavailable (no C++ compiler). The arguments are those of :func:`snnkit.ops.lif_multistep`; the shape does not
    matter (the neuron dimension is dynamic) and every ``T`` is served by the same two chunk lengths, both compiled
    here. With inductor's on-disk cache warm, this takes about a second per configuration."""
    from . import lif_multistep
    from ...surrogate import Sigmoid

    if not available():
        return False
    surrogate = Sigmoid(alpha=4.0) if surrogate is None else surrogate
    x = torch.zeros(CHUNK + 1, 2, dtype=dtype, requires_grad=backward)
    v0 = torch.zeros(2, requires_grad=backward) if with_v0 else None
    tau = torch.tensor(2.0, requires_grad=backward) if learnable_tau else 2.0
    out, v = lif_multistep(x, v0, tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input,
                           detach_reset=detach_reset, surrogate=surrogate, store_v_seq=store_v_seq, storage=storage,
                           backend="fused")
    if backward:
        out.backward(torch.ones_like(out))  # a loss on the output (spikes), the usual case
    return True
