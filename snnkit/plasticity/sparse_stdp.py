"""Event-driven pair STDP on a sparse synapse list, with one weight vector per sample.

The rule is the one of :func:`snnkit.plasticity.stdp_delta` (module doc of ``snnkit.plasticity.stdp``), evaluated
for one time step on the synapses of a sparse network instead of a dense ``[out, in]`` matrix::

    dW[b, k] = a_plus[b]  * s_post[b, post_k] * x_pre[b, pre_k]  - a_minus[b] * s_pre[b, pre_k] * x_post[b, post_k]
    dW_mirrored[b, k] = -a_minus[b] * s_post[b, post_k] * x_pre[b, pre_k] + a_plus[b] * s_pre[b, pre_k] * x_post[b, post_k]

for synapse ``k`` from pre-synaptic neuron ``pre_k`` to post-synaptic neuron ``post_k`` and sample ``b``; mirrored
synapses follow the rule of inhibitory synapses in Ivanov & Michmizos (2021), "Increasing Liquid State Machine
Performance with Edge-of-Chaos Dynamics Organized by Astrocyte-modulated Plasticity", NeurIPS 2021.

Why a second evaluation of the same rule: a liquid of 1000-8000 neurons has 2-3% of its synapses, its plasticity
must run step by step (the spikes depend on the weights), and every sample of a batch has its own weights. The dense
``stdp_delta(..., reduce="none")`` would build ``[B, out, in]`` every step; here only the synapses of neurons that
spiked in this step are touched (a term is non-zero only where ``s_pre`` or ``s_post`` is 1), so the cost is the
number of spikes times the fan-in/fan-out, not ``B * out * in``.

Traces are the caller's: pass the traces *after* adding this step's spikes to get exactly ``stdp_delta`` with
``trace_update="decay_add"`` summed step by step (tested), or the traces of the *previous* step to pair a spike only
with strictly earlier spikes, as NALSM's reference code does. :func:`update_traces` advances the traces with the
conventions of ``stdp_traces``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._checks import check_option, check_time_constant
from .stdp import PAIRINGS, TRACE_UPDATES, _traces

__all__ = ["SynapseIndex", "expand_events", "sparse_stdp_step", "update_traces"]


@dataclass(frozen=True)
class SynapseIndex:
    """A fixed sparse connectivity: synapse ``k`` goes from ``pre[k]`` to ``post[k]``; synapses sorted by ``pre``.

    Attributes:
        pre, post: ``[S]`` int64 neuron indices (``pre`` non-decreasing).
        n_pre, n_post: sizes of the pre- and post-synaptic populations.
        out_ptr: ``[n_pre + 1]``: the synapses leaving pre-neuron ``j`` are ``out_ptr[j]:out_ptr[j + 1]``.
        in_order, in_ptr: ``in_order[in_ptr[i]:in_ptr[i + 1]]`` are the synapses arriving at post-neuron ``i``.
    """

    pre: torch.Tensor
    post: torch.Tensor
    n_pre: int
    n_post: int
    out_ptr: torch.Tensor
    in_order: torch.Tensor
    in_ptr: torch.Tensor

    @staticmethod
    def from_pairs(pre: torch.Tensor, post: torch.Tensor, n_pre: int, n_post: int) -> tuple[SynapseIndex, torch.Tensor]:
        """Index the synapses ``pre[k] -> post[k]``; returns the index and the permutation ``order`` that sorts the
        given synapses by (pre, post) (``values[order]`` puts per-synapse values in the index's order)."""
        if not isinstance(pre, torch.Tensor) or not isinstance(post, torch.Tensor):
            raise TypeError("pre and post must be integer tensors")
        if pre.dim() != 1 or pre.shape != post.shape:
            raise ValueError(f"pre and post must be 1-D of the same length, got {list(pre.shape)} and {list(post.shape)}")
        if pre.is_floating_point() or post.is_floating_point():
            raise TypeError("pre and post must be integer tensors")
        pre, post = pre.long(), post.long()
        if pre.numel() and (int(pre.min()) < 0 or int(pre.max()) >= n_pre):
            raise ValueError(f"pre indices must lie in [0, {n_pre})")
        if post.numel() and (int(post.min()) < 0 or int(post.max()) >= n_post):
            raise ValueError(f"post indices must lie in [0, {n_post})")
        order = torch.argsort(pre * n_post + post, stable=True)
        pre, post = pre[order], post[order]
        out_ptr = torch.zeros(n_pre + 1, dtype=torch.long, device=pre.device)
        out_ptr[1:] = torch.cumsum(torch.bincount(pre, minlength=n_pre), 0)
        in_order = torch.argsort(post, stable=True)
        in_ptr = torch.zeros(n_post + 1, dtype=torch.long, device=pre.device)
        in_ptr[1:] = torch.cumsum(torch.bincount(post, minlength=n_post), 0)
        return SynapseIndex(pre, post, n_pre, n_post, out_ptr, in_order, in_ptr), order

    @property
    def num_synapses(self) -> int:
        return int(self.pre.numel())

    def to(self, device: torch.device | str) -> SynapseIndex:
        return SynapseIndex(self.pre.to(device), self.post.to(device), self.n_pre, self.n_post,
                            self.out_ptr.to(device), self.in_order.to(device), self.in_ptr.to(device))


def expand_events(spikes: torch.Tensor, ptr: torch.Tensor, order: torch.Tensor | None = None):
    """The synapses of the neurons that spiked: ``(sample [E], synapse [E])`` for every spike ``spikes[b, j] = 1``
    and every synapse ``ptr[j] <= p < ptr[j + 1]`` (``order[p]`` when ``order`` is given).

    Events come sample by sample, neuron by neuron, in synapse order: the same relative order whatever the batch
    size, so sums over events (``index_add_``) are the same for a sample alone or in a batch.
    """
    b, j = torch.nonzero(spikes, as_tuple=True)
    start = ptr.index_select(0, j)
    counts = ptr.index_select(0, j + 1) - start
    total = int(counts.sum()) if counts.numel() else 0
    if total == 0:
        empty = torch.zeros(0, dtype=torch.long, device=spikes.device)
        return empty, empty
    # event e belongs to spike rep[e]; its synapse is start[rep[e]] + (e - first event of that spike)
    rep = torch.repeat_interleave(torch.arange(len(j), device=spikes.device), counts, output_size=total)
    shift = (start - (torch.cumsum(counts, 0) - counts)).index_select(0, rep)
    syn = torch.arange(total, device=spikes.device) + shift
    if order is not None:
        syn = order.index_select(0, syn)
    return b.index_select(0, rep), syn


def _per_sample(a, b: torch.Tensor, like: torch.Tensor):
    """Amplitude ``a`` (float or ``[B]`` tensor) at the events of samples ``b``."""
    if isinstance(a, torch.Tensor) and a.dim() > 0:
        return a.to(like.dtype).index_select(0, b)
    return float(a)


def _gather(x: torch.Tensor, b: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """``x[b, i]`` for ``x [B, n]`` as one flat ``index_select`` (much faster than two-tensor indexing)."""
    return x.reshape(-1).index_select(0, b * x.shape[1] + i)


def sparse_stdp_step(
    weight: torch.Tensor,
    synapses: SynapseIndex,
    pre_spikes: torch.Tensor,
    post_spikes: torch.Tensor,
    pre_trace: torch.Tensor,
    post_trace: torch.Tensor,
    *,
    a_plus: float | torch.Tensor,
    a_minus: float | torch.Tensor,
    mirrored: torch.Tensor | None = None,
    w_min: float | torch.Tensor | None = None,
    w_max: float | torch.Tensor | None = None,
    out_events: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply one step of STDP (module doc) to the per-sample weights ``weight [B, S]`` in place, under no_grad.

    Args:
        weight: ``[B, S]`` floating, one weight vector per sample, in ``synapses``' order.
        synapses: the :class:`SynapseIndex`.
        pre_spikes, post_spikes: this step's spikes ``[B, n_pre]``, ``[B, n_post]`` (0/1, any dtype).
        pre_trace, post_trace: ``[B, n_pre]``, ``[B, n_post]`` traces paired with the spikes (module doc).
        a_plus, a_minus: floats or ``[B]`` tensors (per-sample amplitudes, e.g. an astrocyte's depression).
        mirrored: ``[S]`` bool, the synapses that follow the mirrored (inhibitory) rule; None: none.
        w_min, w_max: bounds applied to every changed synapse: floats or ``[S]`` tensors (per-synapse sign limits).
        out_events: ``expand_events(pre_spikes, synapses.out_ptr)`` when the caller has it already (a simulation
            that propagated this step's spikes), to avoid computing it twice.

    Returns:
        the flat indices (into ``weight.view(-1)``) of the synapses changed by the causal and by the anti-causal
        terms (duplicates possible); the bounds hold for every weight afterwards.
    """
    _B, S = weight.shape
    flat = weight.view(-1)
    with torch.no_grad():
        # causal pairs: post spiked now, the pre trace says how recently the pre-synaptic neuron spiked
        b_in, k_in = expand_events(post_spikes, synapses.in_ptr, synapses.in_order)
        x_pre = _gather(pre_trace, b_in, synapses.pre.index_select(0, k_in)).to(weight.dtype)
        # anti-causal pairs: pre spiked now, the post trace says how recently the post-synaptic neuron spiked
        b_out, k_out = expand_events(pre_spikes, synapses.out_ptr) if out_events is None else out_events
        x_post = _gather(post_trace, b_out, synapses.post.index_select(0, k_out)).to(weight.dtype)
        if mirrored is None:
            d_in = _per_sample(a_plus, b_in, x_pre) * x_pre
            d_out = -_per_sample(a_minus, b_out, x_post) * x_post
        else:
            m_in, m_out = mirrored.index_select(0, k_in), mirrored.index_select(0, k_out)
            d_in = torch.where(m_in, -_per_sample(a_minus, b_in, x_pre), _per_sample(a_plus, b_in, x_pre)) * x_pre
            d_out = torch.where(m_out, _per_sample(a_plus, b_out, x_post),
                                -_per_sample(a_minus, b_out, x_post)) * x_post
        idx_in, idx_out = b_in * S + k_in, b_out * S + k_out
        flat.index_add_(0, idx_in, d_in)
        flat.index_add_(0, idx_out, d_out)
        if w_min is not None or w_max is not None:
            n_events = idx_in.numel() + idx_out.numel()
            if 10 * n_events >= flat.numel():
                # many events: one pass over all weights costs less than gathering and scattering the touched ones
                # (weights that did not change are inside their bounds already)
                if w_min is not None:
                    weight.clamp_(min=w_min)
                if w_max is not None:
                    weight.clamp_(max=w_max)
            else:  # few events (a large liquid): bound only the touched weights
                touched = torch.cat([idx_in, idx_out])
                k = torch.cat([k_in, k_out])
                v = flat.index_select(0, touched)
                if w_min is not None:
                    v = torch.maximum(v, w_min.index_select(0, k)) if isinstance(w_min, torch.Tensor) \
                        else v.clamp(min=w_min)
                if w_max is not None:
                    v = torch.minimum(v, w_max.index_select(0, k)) if isinstance(w_max, torch.Tensor) \
                        else v.clamp(max=w_max)
                flat.index_copy_(0, touched, v)
    return idx_in, idx_out


def update_traces(trace: torch.Tensor, spikes: torch.Tensor, tau: float, *, increment: float = 1.0,
                  trace_update: str = "decay_add", pairing: str = "all_to_all") -> torch.Tensor:
    """One step of the traces of ``stdp_traces`` (same conventions): the trace ``[...]`` after ``spikes [...]``."""
    tau = check_time_constant("tau", tau)
    check_option("trace_update", trace_update, TRACE_UPDATES)
    check_option("pairing", pairing, PAIRINGS)
    s = spikes.to(trace.dtype)
    return _traces(s.unsqueeze(0), math.exp(-1.0 / tau), float(increment), trace_update, pairing, trace)[0]
