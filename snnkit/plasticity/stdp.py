"""Trace-based pair STDP (spike-timing-dependent plasticity) for the weights of a linear layer.

Rule (Bi & Poo 1998, J. Neurosci. 18(24):10464, measured the timing window; Song, Miller & Abbott 2000,
Nat. Neurosci. 3(9):919, the additive pair rule with exponential windows; the trace formulation follows
Morrison, Diesmann & Gerstner 2008, Biol. Cybern. 98:459). Time is counted in steps; every time constant is in steps.

Traces, one per pre-synaptic input and one per post-synaptic neuron, with ``lam = exp(-1 / tau)`` and increment ``c``:

- ``trace_update="decay_add"`` (default): ``x_t = lam * x_{t-1} + c * s_t`` (a spike at ``t`` is already in ``x_t``);
- ``trace_update="add_decay"``: ``x_t = lam * (x_{t-1} + c * s_t)`` (NALSM's ``x <- 0.9048 (x + 0.1 S)``,
  i.e. ``tau = 10``, ``c = 0.1``: the spike at ``t`` enters ``x_t`` already decayed by one step);
- ``pairing="all_to_all"`` (default) adds ``c`` on every spike, so every earlier spike counts;
  ``pairing="nearest"`` sets the trace to ``c`` on a spike (only the latest spike counts).

Weight change, for a weight ``W [out, in]`` as in ``nn.Linear`` (``y = x @ W.T``: column ``i`` is the
pre-synaptic input ``i``, row ``o`` the post-synaptic neuron ``o``), summed over time and batch::

    dW[o, i] = lr * sum_{t, b} ( a_plus[t, b]  * s_post[t, b, o] * x_pre[t, b, i]
                               - a_minus[t, b] * s_pre[t, b, i]  * x_post[t, b, o] )

so with ``decay_add`` and all-to-all pairing a pre spike at ``t_pre`` and a post spike at ``t_post`` change ``W`` by
``+lr a_plus c exp(-(t_post - t_pre)/tau_pre)`` when ``t_post >= t_pre`` (pre before post: potentiation) and by
``-lr a_minus c exp(-(t_pre - t_post)/tau_post)`` when ``t_pre >= t_post`` (post before pre: depression);
simultaneous spikes get both terms. With ``add_decay`` each exponent has one more step.

Amplitudes are plain attributes of :class:`STDP` and may be changed between calls, or passed per call as a float,
a per-step tensor ``[T]`` or a per-step, per-sample tensor ``[T, B]`` (how a modulator such as NALSM's astrocyte sets
the depression amplitude at every step). ``mirrored`` selects synapses that follow the mirrored rule of inhibitory
synapses (Ivanov & Michmizos 2021)::

    dW_mirrored[o, i] = lr * sum_{t, b} ( -a_minus * s_post * x_pre + a_plus * s_pre * x_post )

i.e. the modulated amplitude ``a_minus`` weighs the causal pairs with a minus sign and ``a_plus`` the anti-causal
pairs with a plus sign. Traces can be carried between calls (``traces=`` / ``return_traces=True``), so a
simulation whose spikes depend on the weights can apply STDP step by step (``T = 1`` chunks) or in chunks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..validation import check_real
from ._checks import check_amplitude, check_option, check_spikes, check_time_constant

__all__ = ["PAIRINGS", "STDP", "TRACE_UPDATES", "STDPTraces", "stdp_delta", "stdp_traces"]

TRACE_UPDATES = ("decay_add", "add_decay")
PAIRINGS = ("all_to_all", "nearest")

Amplitude = float | torch.Tensor


class STDPTraces(NamedTuple):
    """The last pre- and post-synaptic traces of a call, ``[*batch, in]`` and ``[*batch, out]``."""

    pre: torch.Tensor
    post: torch.Tensor


def stdp_traces(
    spikes: torch.Tensor,
    tau: float,
    *,
    increment: float = 1.0,
    trace_update: str = "decay_add",
    pairing: str = "all_to_all",
    initial: torch.Tensor | None = None,
) -> torch.Tensor:
    """The trace of every train in ``spikes [T, ...]`` at every step, ``[T, ...]`` (convention in the module doc).

    ``initial`` is the trace before the first step (``[...]``, zeros when None). Spikes of any dtype are used as
    floats of the default dtype unless they are floating already.
    """
    spikes = check_spikes("spikes", spikes, min_dim=1)
    tau = check_time_constant("tau", tau)
    c = check_real("increment", increment)
    check_option("trace_update", trace_update, TRACE_UPDATES)
    check_option("pairing", pairing, PAIRINGS)
    s = spikes if spikes.is_floating_point() else spikes.to(torch.get_default_dtype())
    return _traces(s, math.exp(-1.0 / tau), c, trace_update, pairing, initial)


def _traces(s: torch.Tensor, lam: float, c: float, trace_update: str, pairing: str,
            initial: torch.Tensor | None) -> torch.Tensor:
    out = torch.empty_like(s)
    x = torch.zeros_like(s[0]) if initial is None else initial.to(s.dtype).expand_as(s[0])
    nearest = pairing == "nearest"
    for t in range(s.shape[0]):
        st = s[t]
        if trace_update == "decay_add":
            x = torch.where(st > 0, c, lam * x) if nearest else lam * x + c * st
        else:
            x = lam * (torch.where(st > 0, c, x) if nearest else x + c * st)
        out[t] = x
    return out


def _weighted(amplitude, spikes: torch.Tensor) -> torch.Tensor:
    """``amplitude * spikes`` with a per-step(-and-sample) amplitude ``[T, B]`` broadcast over the last dim."""
    if isinstance(amplitude, torch.Tensor) and amplitude.dim() > 0:
        return spikes * amplitude.to(spikes.dtype).unsqueeze(-1)
    return spikes * amplitude


def stdp_delta(
    pre: torch.Tensor,
    post: torch.Tensor,
    *,
    tau_pre: float = 20.0,
    tau_post: float = 20.0,
    a_plus: Amplitude = 0.01,
    a_minus: Amplitude = 0.012,
    lr: float = 1.0,
    increment_pre: float = 1.0,
    increment_post: float = 1.0,
    trace_update: str = "decay_add",
    pairing: str = "all_to_all",
    mirrored: bool | torch.Tensor | None = None,
    reduce: str = "sum",
    traces: STDPTraces | None = None,
    return_traces: bool = False,
):
    """The STDP weight change of a linear layer from its input and output spikes (no weight is touched).

    Args:
        pre: pre-synaptic spikes ``[T, *batch, in]`` (0/1; float, bool or integer dtype).
        post: post-synaptic spikes ``[T, *batch, out]``, the same ``T`` and batch dims as ``pre``.
        tau_pre, tau_post: trace time constants in steps (> 0). Defaults 20 (Song, Miller & Abbott 2000).
        a_plus, a_minus: potentiation and depression amplitudes: floats (may be negative), or floating tensors of
            shape ``[T]`` (per step) or ``[T, *batch]`` (per step and sample). Defaults 0.01 and 0.012
            (``a_minus / a_plus = 1.2``, depression slightly dominant, as in Song et al. 2000).
        lr: a factor on the whole change.
        increment_pre, increment_post: what a spike adds to its trace (``c``; NALSM uses 0.1).
        trace_update: ``"decay_add"`` or ``"add_decay"`` (module doc).
        pairing: ``"all_to_all"`` or ``"nearest"`` (module doc).
        mirrored: None/False (every synapse follows the rule above), True (every synapse follows the mirrored
            rule) or a bool tensor broadcastable to ``[out, in]`` choosing the mirrored synapses (e.g. a ``[in]``
            mask of inhibitory pre-synaptic neurons).
        reduce: ``"sum"`` -> ``[out, in]`` summed over the batch; ``"none"`` -> ``[*batch, out, in]`` per sample
            (for simulations in which every sample has its own plastic weights).
        traces: the traces at the end of a previous call (:class:`STDPTraces`), to continue a sequence.
        return_traces: also return the last traces, ``(dW, STDPTraces)``.

    Returns:
        ``dW`` in the dtype of the spikes (the default dtype for non-floating spikes), on their device; and the traces
        when ``return_traces``.
    """
    pre = check_spikes("pre", pre, min_dim=2)
    post = check_spikes("post", post, min_dim=2)
    if pre.shape[:-1] != post.shape[:-1]:
        raise ValueError(f"pre [T, *batch, in] and post [T, *batch, out] must share T and the batch dims, got "
                         f"{list(pre.shape)} and {list(post.shape)}")
    if pre.device != post.device:
        raise ValueError(f"pre is on {pre.device} but post is on {post.device}")
    tau_pre = check_time_constant("tau_pre", tau_pre)
    tau_post = check_time_constant("tau_post", tau_post)
    lr = check_real("lr", lr)
    c_pre = check_real("increment_pre", increment_pre)
    c_post = check_real("increment_post", increment_post)
    check_option("trace_update", trace_update, TRACE_UPDATES)
    check_option("pairing", pairing, PAIRINGS)
    check_option("reduce", reduce, ("sum", "none"))
    T, batch = pre.shape[0], tuple(pre.shape[1:-1])
    n_in, n_out = pre.shape[-1], post.shape[-1]
    a_plus = check_amplitude("a_plus", a_plus, T, batch)
    a_minus = check_amplitude("a_minus", a_minus, T, batch)
    if mirrored is not None and not isinstance(mirrored, bool):
        if not isinstance(mirrored, torch.Tensor) or mirrored.dtype != torch.bool:
            raise TypeError(f"mirrored must be None, a bool or a bool tensor, got "
                            f"{getattr(mirrored, 'dtype', type(mirrored).__name__)}")
        try:
            torch.broadcast_shapes(mirrored.shape, (n_out, n_in))
        except RuntimeError:
            raise ValueError(f"mirrored must broadcast to [out, in] = [{n_out}, {n_in}], got "
                             f"{list(mirrored.shape)}") from None
    if traces is not None:
        if not isinstance(traces, tuple) or len(traces) != 2:
            raise TypeError("traces must be an STDPTraces(pre, post) from a previous call")
        for nm, tr, want in (("traces.pre", traces[0], (*batch, n_in)), ("traces.post", traces[1], (*batch, n_out))):
            if not isinstance(tr, torch.Tensor) or tuple(tr.shape) != want:
                raise ValueError(f"{nm} must be a tensor of shape {list(want)}, got "
                                 f"{list(tr.shape) if isinstance(tr, torch.Tensor) else type(tr).__name__}")

    dtype = pre.dtype if pre.is_floating_point() else (post.dtype if post.is_floating_point()
                                                       else torch.get_default_dtype())
    s_pre = pre.to(dtype).reshape(T, -1, n_in)
    s_post = post.to(dtype).reshape(T, -1, n_out)
    if isinstance(a_plus, torch.Tensor) and a_plus.dim() > 0:
        a_plus = a_plus.reshape(T, -1)
    if isinstance(a_minus, torch.Tensor) and a_minus.dim() > 0:
        a_minus = a_minus.reshape(T, -1)
    init_pre = init_post = None
    if traces is not None:
        init_pre, init_post = traces[0].reshape(-1, n_in), traces[1].reshape(-1, n_out)
    x_pre = _traces(s_pre, math.exp(-1.0 / tau_pre), c_pre, trace_update, pairing, init_pre)
    x_post = _traces(s_post, math.exp(-1.0 / tau_post), c_post, trace_update, pairing, init_post)

    eq = "tbo,tbi->oi" if reduce == "sum" else "tbo,tbi->boi"
    mode = mirrored if isinstance(mirrored, torch.Tensor) else bool(mirrored)
    dw = None
    if mode is not True:  # the ordinary rule is needed somewhere
        dw = torch.einsum(eq, _weighted(a_plus, s_post), x_pre) - torch.einsum(eq, x_post, _weighted(a_minus, s_pre))
    if mode is not False:  # the mirrored rule is needed somewhere
        dw_m = torch.einsum(eq, _weighted(a_plus, x_post), s_pre) - torch.einsum(eq, s_post, _weighted(a_minus, x_pre))
        dw = dw_m if dw is None else torch.where(mode.to(dw.device), dw_m, dw)
    if lr != 1.0:
        dw = dw * lr
    if reduce == "none":
        dw = dw.reshape(*batch, n_out, n_in)
    if return_traces:
        return dw, STDPTraces(x_pre[-1].reshape(*batch, n_in), x_post[-1].reshape(*batch, n_out))
    return dw


class STDP:
    """Pair STDP with exponential traces that updates the weight of an ``nn.Linear`` (or a weight tensor) in place.

    Every setting is a plain attribute, changeable between calls (``stdp.a_minus = 0.02``); ``update`` and ``delta``
    also take ``a_plus`` / ``a_minus`` per call (a float, ``[T]`` or ``[T, *batch]`` tensor). The math is
    :func:`stdp_delta`; the conventions are in this module's docstring.

    Args:
        tau_pre, tau_post: trace time constants in steps. Default 20 (Song, Miller & Abbott 2000: 20 ms at 1 ms steps).
        a_plus, a_minus: amplitudes (defaults 0.01, 0.012: Song et al. 2000's depression/potentiation ratio 1.2).
        w_min, w_max: after an update the weights are clipped to ``[w_min, w_max]`` (either may be None: no bound).
        lr: factor on every change (default 1).
        increment_pre, increment_post, trace_update, pairing: the trace convention (module doc). NALSM:
            ``tau_pre=tau_post=10, increment_pre=increment_post=0.1, trace_update="add_decay"``.
        mirrored: default synapse selection for the mirrored (inhibitory) rule, see :func:`stdp_delta`.
    """

    def __init__(
        self,
        tau_pre: float = 20.0,
        tau_post: float = 20.0,
        a_plus: Amplitude = 0.01,
        a_minus: Amplitude = 0.012,
        w_min: float | None = None,
        w_max: float | None = None,
        *,
        lr: float = 1.0,
        increment_pre: float = 1.0,
        increment_post: float = 1.0,
        trace_update: str = "decay_add",
        pairing: str = "all_to_all",
        mirrored: bool | torch.Tensor | None = None,
    ) -> None:
        self.tau_pre = check_time_constant("tau_pre", tau_pre)
        self.tau_post = check_time_constant("tau_post", tau_post)
        for name, a in (("a_plus", a_plus), ("a_minus", a_minus)):
            if not isinstance(a, torch.Tensor):
                check_real(name, a)
        self.a_plus = a_plus
        self.a_minus = a_minus
        self.w_min = check_real("w_min", w_min, allow_none=True)
        self.w_max = check_real("w_max", w_max, allow_none=True)
        if self.w_min is not None and self.w_max is not None and self.w_min > self.w_max:
            raise ValueError(f"w_min must be <= w_max, got w_min={self.w_min} and w_max={self.w_max}")
        self.lr = check_real("lr", lr)
        self.increment_pre = check_real("increment_pre", increment_pre)
        self.increment_post = check_real("increment_post", increment_post)
        self.trace_update = check_option("trace_update", trace_update, TRACE_UPDATES)
        self.pairing = check_option("pairing", pairing, PAIRINGS)
        self.mirrored = mirrored

    def __repr__(self) -> str:
        def show(a):
            return f"tensor{list(a.shape)}" if isinstance(a, torch.Tensor) else repr(a)

        return (f"STDP(tau_pre={self.tau_pre}, tau_post={self.tau_post}, a_plus={show(self.a_plus)}, "
                f"a_minus={show(self.a_minus)}, w_min={self.w_min}, w_max={self.w_max}, lr={self.lr}, "
                f"trace_update={self.trace_update!r}, pairing={self.pairing!r})")

    def delta(self, pre: torch.Tensor, post: torch.Tensor, *, a_plus: Amplitude | None = None,
              a_minus: Amplitude | None = None, reduce: str = "sum", traces: STDPTraces | None = None,
              return_traces: bool = False):
        """The change :func:`stdp_delta` gives with this object's settings (``a_plus``/``a_minus`` override)."""
        return stdp_delta(
            pre, post, tau_pre=self.tau_pre, tau_post=self.tau_post,
            a_plus=self.a_plus if a_plus is None else a_plus,
            a_minus=self.a_minus if a_minus is None else a_minus,
            lr=self.lr, increment_pre=self.increment_pre, increment_post=self.increment_post,
            trace_update=self.trace_update, pairing=self.pairing, mirrored=self.mirrored, reduce=reduce,
            traces=traces, return_traces=return_traces,
        )

    def update(self, layer: nn.Linear | torch.Tensor, pre: torch.Tensor, post: torch.Tensor, *,
               a_plus: Amplitude | None = None, a_minus: Amplitude | None = None,
               traces: STDPTraces | None = None, return_traces: bool = False):
        """Apply the STDP change to ``layer.weight`` (or to the weight tensor ``layer``) in place, under no_grad.

        ``layer`` is an ``nn.Linear`` (weight ``[out, in]``; the change is summed over the batch), a weight tensor
        ``[out, in]``, or a per-sample weight tensor ``[B, out, in]`` (``pre [T, B, in]``; each sample changes its
        own weights). Spikes are cast to the weight's dtype. Returns the change actually applied (after clipping
        to ``[w_min, w_max]``), and the last traces when ``return_traces``.
        """
        if isinstance(layer, nn.Linear):
            weight = layer.weight
        elif isinstance(layer, torch.Tensor):
            weight = layer
        else:
            raise TypeError(f"layer must be an nn.Linear or a weight tensor, got {type(layer).__name__}")
        if not weight.is_floating_point():
            raise TypeError(f"the weight must be floating point, got {weight.dtype}")
        if weight.dim() not in (2, 3):
            raise ValueError(f"the weight must be [out, in] or per sample [B, out, in], got {list(weight.shape)}")
        per_sample = weight.dim() == 3
        for name, s in (("pre", pre), ("post", post)):
            if isinstance(s, torch.Tensor) and s.device != weight.device:
                raise ValueError(f"{name} is on {s.device} but the weight is on {weight.device}")
        if isinstance(pre, torch.Tensor) and isinstance(post, torch.Tensor):
            want_pre, want_post = weight.shape[-1], weight.shape[-2]
            if pre.dim() >= 1 and pre.shape[-1] != want_pre:
                raise ValueError(f"pre has {pre.shape[-1]} inputs in its last dim but the weight expects {want_pre}")
            if post.dim() >= 1 and post.shape[-1] != want_post:
                raise ValueError(f"post has {post.shape[-1]} outputs in its last dim but the weight has {want_post}")
            if per_sample and (pre.dim() != 3 or pre.shape[1] != weight.shape[0]):
                raise ValueError(f"a per-sample weight {list(weight.shape)} needs pre [T, B={weight.shape[0]}, in], "
                                 f"got {list(pre.shape)}")
            pre, post = pre.to(weight.dtype), post.to(weight.dtype)
        out = self.delta(pre, post, a_plus=a_plus, a_minus=a_minus, reduce="none" if per_sample else "sum",
                         traces=traces, return_traces=return_traces)
        dw = out[0] if return_traces else out
        with torch.no_grad():
            if self.w_min is None and self.w_max is None:
                weight.add_(dw)
                applied = dw
            else:
                old = weight.detach().clone()
                weight.add_(dw).clamp_(min=self.w_min, max=self.w_max)
                applied = weight.detach() - old
        return (applied, out[1]) if return_traces else applied
