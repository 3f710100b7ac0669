"""Liquid state machine (LSM) with astrocyte-modulated STDP: NALSM.

Ivanov & Michmizos (2021), "Increasing Liquid State Machine Performance with Edge-of-Chaos Dynamics Organized by
Astrocyte-modulated Plasticity", NeurIPS 2021 (reference code combra-lab/NALSM, TensorFlow 1, one sample at a time).

**Liquid.** ``N = X * Y * Z`` LIF neurons on a 3-D grid, 80% excitatory (E) and 20% inhibitory (I), placed at random
grid points. A synapse ``m -> n`` (``m != n``) exists with probability ``C_{type(m) type(n)} exp(-(D(m, n) / lambda)^2)``,
``D`` the Euclidean grid distance, ``lambda = 3``, ``C_EE = 0.2, C_EI = 0.1, C_IE = 0.3, C_II = 0.05`` (``C_EI``:
E -> I). Every input channel connects to every liquid neuron with probability 0.15. All weights start at magnitude
3: E synapses ``+3`` (kept in ``[0, 3]``), I synapses ``-3`` (kept in ``[-3, 0]``), input synapses ``+-3`` with a
random sign (kept in ``[-3, 3]``).

**Neuron** (dt = 1 ms, one step per ms), per step ``t``::

    s_t   = (v >= v_th) and (r <= 0)                 spikes; r: refractory steps left
    v     = 0 where s_t                              reset
    I_t   = I_{t-1} exp(-1 / tau_syn) + sum_{k: pre_k spiked at t} W_k    (input spikes count as pre spikes)
    v     = v + I_t - v / tau_v
    r     = t_ref where s_t, else r - 1

``tau_v = 64``, ``v_th = 20``, ``tau_syn = 1``, ``t_ref = 2`` (a neuron that spiked at ``t`` cannot spike at ``t + 1``
or ``t + 2``). A spike reaches its targets in the same step and makes them fire from the next step on. The reference
code keeps, per synapse, the current of the *last* pre-synaptic spike (``W exp(-age)``); here the synaptic current
is the usual sum of exponentials, so that only the synapses of neurons that spiked are touched each step (with
``tau_syn = 1`` and a refractory period of 2 steps, the two differ by the ``e^-3 = 5%`` tail of an earlier spike).

**Plasticity**, after the neuron update of every step, on every synapse (:func:`snnkit.plasticity.sparse_stdp_step`,
the sparse form of :func:`snnkit.plasticity.stdp_delta`): traces ``x <- 0.9048 (x + 0.1 s)`` (``tau = 10``), a
spike pairs with the traces of the previous step;
E and input synapses ``dW = A+ x_pre s_post - A- x_post s_pre``, I synapses (mirrored)
``dW = -A- x_pre s_post + A+ x_post s_pre``; ``A+ = 0.15``. With the astrocyte (NALSM) ``A- = A_astro``
(:class:`snnkit.plasticity.Astrocyte`); without it (LSM+STDP) ``A- = A+``. During a presentation ``A+`` (and the
astrocyte) decay by 0.99 per step.

**Protocol.** :meth:`LiquidStateMachine.initialise`: the unsupervised phase, samples one after the other for 20 ms
each, neuron and astrocyte state reset per sample, weights carried over, no decay; the result is ``W_INI``. Then
every sample (:meth:`LiquidStateMachine.forward`) starts from ``W_INI`` with plasticity on for its 250 ms
presentation; its state is the spike count of every liquid neuron. The plain LSM has no plasticity at all.

**Why the liquid integrates itself** instead of calling :func:`snnkit.ops.lif.lif_multistep`: its input at step
``t`` depends on its own spikes at ``t`` (recurrence) through weights that change at every step (plasticity), it
needs a refractory period, and it is event-driven over a sparse synapse list with one weight vector per sample; the
LIF op integrates a given input sequence through time in one fused call and has none of these.

**Batching.** All samples of a batch run together, each with its own weights ``[B, S]`` (``S`` synapses); every
step touches only the synapses of the neurons that spiked in that step (propagation and STDP), so the cost grows
with the number of spikes, not with ``B * N^2``. On the CPU a large batch runs in chunks of a few samples
(``cpu_chunk_synapses``), so that the event arrays stay in cache; the chunks run on ``cpu_threads`` Python threads
at once (torch releases the GIL inside its operations), each with one intra-op thread. The result equals running
the samples one at a time, whatever the chunking and the threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from snnkit.encoding import poisson
from snnkit.plasticity.astrocyte import Astrocyte
from snnkit.plasticity.sparse_stdp import (
    SynapseIndex,
    expand_events,
    sparse_stdp_step,
    update_traces,
)
from snnkit.validation import (
    check_bool,
    check_positive_int,
    check_real,
    check_spikes,
    check_tensor,
)

__all__ = ["LiquidRun", "LiquidStateMachine", "Readout", "branching_factor", "normalise_rates"]

#: Connection constants C of the paper, keyed (pre type, post type).
PAPER_C = {"EE": 0.2, "EI": 0.1, "IE": 0.3, "II": 0.05}


class LiquidRun(NamedTuple):
    """What a presentation returns: spike counts ``[B, N]``, spikes ``[T, B, N]`` (or None), weights ``[B, S]``."""

    counts: torch.Tensor
    spikes: torch.Tensor | None
    weights: torch.Tensor


@dataclass(frozen=True)
class _Liquid:
    """The sampled connectivity (all tensors on the CPU at build time)."""

    positions: torch.Tensor  # [N, 3] grid coordinates
    excitatory: torch.Tensor  # [N] bool
    pre: torch.Tensor  # [S] pre index: 0..N-1 liquid, N..N+n_in-1 input channel
    post: torch.Tensor  # [S] post index (liquid)
    weight: torch.Tensor  # [S] initial weight
    w_min: torch.Tensor  # [S]
    w_max: torch.Tensor  # [S]
    mirrored: torch.Tensor  # [S] bool: inhibitory pre-synaptic neuron


def _build_liquid(grid: tuple[int, int, int], n_inputs: int, *, frac_exc: float, c: dict[str, float], lam: float,
                  p_in: float, w0: float, generator: torch.Generator) -> _Liquid:
    n = grid[0] * grid[1] * grid[2]
    coords = torch.stack(torch.meshgrid(*(torch.arange(g) for g in grid), indexing="ij"), -1).reshape(n, 3)
    positions = coords[torch.randperm(n, generator=generator)].float()
    n_exc = round(frac_exc * n)
    exc = torch.zeros(n, dtype=torch.bool)
    exc[:n_exc] = True
    c_pre_post = torch.tensor([[c["II"], c["IE"]], [c["EI"], c["EE"]]])  # [pre is E][post is E]
    pres, posts = [], []
    rows = max(1, 2_000_000 // n)  # post neurons per chunk: keeps the [rows, N] probability block small
    for start in range(0, n, rows):
        post = torch.arange(start, min(n, start + rows))
        d2 = torch.cdist(positions[post], positions).pow(2)
        prob = c_pre_post[exc.long()[None, :], exc.long()[post][:, None]] * torch.exp(-d2 / (lam * lam))
        prob[torch.arange(len(post)), post] = 0.0  # no self-connection
        hit = torch.rand(prob.shape, generator=generator) < prob
        r, m = torch.nonzero(hit, as_tuple=True)
        pres.append(m)
        posts.append(post[r])
    pre_liq, post_liq = torch.cat(pres), torch.cat(posts)
    hit_in = torch.rand((n, n_inputs), generator=generator) < p_in
    post_in, ch = torch.nonzero(hit_in, as_tuple=True)
    sign_in = torch.where(torch.rand(len(ch), generator=generator) < 0.5, -1.0, 1.0)
    e_pre = exc[pre_liq]
    pre = torch.cat([pre_liq, n + ch])
    post = torch.cat([post_liq, post_in])
    weight = torch.cat([torch.where(e_pre, w0, -w0), w0 * sign_in])
    w_min = torch.cat([torch.where(e_pre, 0.0, -w0), torch.full((len(ch),), -w0)])
    w_max = torch.cat([torch.where(e_pre, w0, 0.0), torch.full((len(ch),), w0)])
    mirrored = torch.cat([~e_pre, torch.zeros(len(ch), dtype=torch.bool)])
    return _Liquid(positions, exc, pre, post, weight, w_min, w_max, mirrored)


@contextmanager
def _one_intra_op_thread(device: torch.device):
    """torch's intra-op pool at one thread for a CPU simulation (restored on exit).

    Every operation of a liquid step touches a few 10^4 elements at most: intra-op threads gain nothing there and,
    on a machine whose other cores are busy, each parallel region waits for a core to be free (a 32-sample
    presentation took 51 s instead of 0.54 s with 2 intra-op threads and one of 2 cores taken). A batch's chunks
    run on threads of their own instead (:meth:`LiquidStateMachine.simulate`).
    """
    if device.type != "cpu":
        yield
        return
    intra = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(intra)


def normalise_rates(x: torch.Tensor) -> torch.Tensor:
    """Input firing probabilities per ms as in the reference code: each sample ``[B, n]`` divided by its sum, then
    everything by the largest value, so the brightest input of the set fires with probability 1 per ms."""
    x = check_tensor("x", x, min_dim=2)
    x = x.double() / x.sum(-1, keepdim=True).clamp_min(1e-12)
    return (x / x.max()).to(torch.get_default_dtype())


def _check_grid(grid) -> tuple[int, int, int]:
    if not isinstance(grid, Sequence) or isinstance(grid, str) or len(grid) != 3:
        raise ValueError(f"grid must be three positive integers (X, Y, Z), got {grid!r}")
    return tuple(check_positive_int(f"grid[{i}]", g) for i, g in enumerate(grid))  # type: ignore[return-value]


class LiquidStateMachine(nn.Module):
    """A liquid of LIF neurons on a 3-D grid; plain LSM, LSM+STDP or NALSM (module doc for the equations).

    Args:
        n_inputs: number of input channels.
        grid: liquid size ``(X, Y, Z)``; ``(10, 10, 10)`` = NALSM1000, ``(20, 20, 20)`` = NALSM8000.
        astrocyte: astrocyte-modulated depression (NALSM); needs ``stdp=True``.
        stdp: plasticity during the initialisation and every presentation (False: the plain LSM, fixed weights).
        seed: seed of the connectivity (a ``torch.Generator``; no global state is touched).
        a_plus: STDP potentiation amplitude ``A+`` (0.15).
        astro_w: astrocyte coupling ``w_astro``; None: the paper's ``0.015 * 1000 / N`` (0.015 for 1000 neurons,
            0.0075 for 8000).
        astro_tau: astrocyte time constant in steps (100).
        decay: per-step decay of ``A+`` and the astrocyte during a presentation (0.99).
        tau_v, threshold, tau_syn, refractory: neuron constants (64, 20, 1, 2 steps).
        trace_tau, trace_increment: STDP trace (10 steps, 0.1).
        connection: the ``C`` constants (``{"EE", "EI", "IE", "II"}``, pre type first); lam: ``lambda`` (3).
        input_density: probability of an input -> liquid synapse (0.15); weight: initial magnitude (3).
        frac_excitatory: fraction of excitatory neurons (0.8).
    """

    def __init__(
        self,
        n_inputs: int,
        grid: Sequence[int] = (10, 10, 10),
        *,
        astrocyte: bool = True,
        stdp: bool = True,
        seed: int = 0,
        a_plus: float = 0.15,
        astro_w: float | None = None,
        astro_tau: float = 100.0,
        decay: float = 0.99,
        tau_v: float = 64.0,
        threshold: float = 20.0,
        tau_syn: float = 1.0,
        refractory: int = 2,
        trace_tau: float = 10.0,
        trace_increment: float = 0.1,
        connection: dict[str, float] | None = None,
        lam: float = 3.0,
        input_density: float = 0.15,
        weight: float = 3.0,
        frac_excitatory: float = 0.8,
    ) -> None:
        super().__init__()
        self.n_inputs = check_positive_int("n_inputs", n_inputs)
        self.grid = _check_grid(grid)
        self.astrocyte = check_bool("astrocyte", astrocyte)
        self.stdp = check_bool("stdp", stdp)
        if self.astrocyte and not self.stdp:
            raise ValueError("astrocyte=True needs stdp=True: the astrocyte modulates the STDP depression")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
        self.seed = seed
        self.n_neurons = self.grid[0] * self.grid[1] * self.grid[2]
        self.a_plus = check_real("a_plus", a_plus)
        self.astro_w = 0.015 * 1000.0 / self.n_neurons if astro_w is None else check_real("astro_w", astro_w)
        self.astro_tau = check_real("astro_tau", astro_tau)
        self.decay = check_real("decay", decay)
        self.tau_v = check_real("tau_v", tau_v)
        self.threshold = check_real("threshold", threshold)
        self.tau_syn = check_real("tau_syn", tau_syn)
        if isinstance(refractory, bool) or not isinstance(refractory, int):
            raise TypeError(f"refractory must be an integer number of steps, got {type(refractory).__name__}")
        self.refractory = refractory
        self.trace_tau = check_real("trace_tau", trace_tau)
        self.trace_increment = check_real("trace_increment", trace_increment)
        for name, v in (("astro_tau", self.astro_tau), ("tau_v", self.tau_v), ("tau_syn", self.tau_syn),
                        ("trace_tau", self.trace_tau), ("lam", lam)):
            if v <= 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {self.decay}")
        if self.refractory < 0:
            raise ValueError(f"refractory must be >= 0 steps, got {refractory}")
        c = dict(PAPER_C if connection is None else connection)
        if set(c) != set(PAPER_C):
            raise ValueError(f"connection must have the keys {sorted(PAPER_C)}, got {sorted(c)}")
        for k, v in c.items():
            if not 0.0 <= check_real(f"connection[{k!r}]", v) <= 1.0:
                raise ValueError(f"connection[{k!r}] must lie in [0, 1], got {v}")
        input_density = check_real("input_density", input_density)
        frac_excitatory = check_real("frac_excitatory", frac_excitatory)
        for name, v in (("input_density", input_density), ("frac_excitatory", frac_excitatory)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v}")
        self.connection, self.lam, self.input_density = c, float(lam), input_density
        self.frac_excitatory = frac_excitatory

        g = torch.Generator().manual_seed(seed)
        liq = _build_liquid(self.grid, self.n_inputs, frac_exc=frac_excitatory, c=c, lam=self.lam,
                            p_in=input_density, w0=check_real("weight", weight), generator=g)
        index, order = SynapseIndex.from_pairs(liq.pre, liq.post, self.n_neurons + self.n_inputs, self.n_neurons)
        self.register_buffer("positions", liq.positions)
        self.register_buffer("excitatory", liq.excitatory)
        for name, t in (("syn_pre", index.pre), ("syn_post", index.post), ("out_ptr", index.out_ptr),
                        ("in_order", index.in_order), ("in_ptr", index.in_ptr)):
            self.register_buffer(name, t)
        self.register_buffer("w_min", liq.w_min[order])
        self.register_buffer("w_max", liq.w_max[order])
        self.register_buffer("mirrored", liq.mirrored[order])
        self.register_buffer("w_initial", liq.weight[order].clone())
        #: On the CPU a batch runs in chunks of about this many sample-synapses (``chunk * S``): the event arrays of
        #: a chunk stay in cache, which is faster than one pass over the whole batch (results are the same).
        self.cpu_chunk_synapses = 2**19
        #: CPU threads that simulate chunks of a batch at once (None: ``torch.get_num_threads()``). Chunks are
        #: independent samples, so each thread runs whole chunks, one operation at a time; torch's intra-op pool is
        #: set to one thread during a CPU simulation (restored afterwards; see :meth:`simulate`).
        self.cpu_threads: int | None = None
        #: W_INI: the weights every presentation starts from (the initial weights until :meth:`initialise`).
        self.register_buffer("w_ini", liq.weight[order].clone())

    # ------------------------------------------------------------------------------------------------ structure
    @property
    def synapses(self) -> SynapseIndex:
        """The synapse index (pre: liquid neurons ``0..N-1`` then input channels ``N..N+n_inputs-1``)."""
        return SynapseIndex(self.syn_pre, self.syn_post, self.n_neurons + self.n_inputs, self.n_neurons,
                            self.out_ptr, self.in_order, self.in_ptr)

    @property
    def num_synapses(self) -> int:
        return int(self.syn_pre.numel())

    @property
    def variant(self) -> str:
        """``"NALSM"``, ``"LSM+STDP"`` or ``"LSM"``."""
        return "NALSM" if self.astrocyte else ("LSM+STDP" if self.stdp else "LSM")

    def extra_repr(self) -> str:
        return (f"{self.variant}, n_inputs={self.n_inputs}, grid={self.grid}, neurons={self.n_neurons}, "
                f"synapses={self.num_synapses}, seed={self.seed}")

    def liquid_adjacency(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pre, post)`` of the liquid -> liquid synapses (used by the branching factor)."""
        keep = self.syn_pre < self.n_neurons
        return self.syn_pre[keep], self.syn_post[keep]

    # ---------------------------------------------------------------------------------------------- simulation
    def _check_inputs(self, inputs) -> torch.Tensor:
        inputs = check_spikes("inputs", inputs, min_dim=3)
        if inputs.dim() != 3:
            raise ValueError(f"inputs must be [T, B, n_inputs] spikes, got shape {list(inputs.shape)}")
        if inputs.shape[-1] != self.n_inputs:
            raise ValueError(f"inputs has {inputs.shape[-1]} channels in its last dim but the liquid was built with "
                             f"n_inputs={self.n_inputs}")
        if inputs.device != self.w_ini.device:
            raise ValueError(f"inputs is on {inputs.device} but the liquid is on {self.w_ini.device}")
        return inputs.to(self.w_ini.dtype)

    def _simulate(self, inputs: torch.Tensor, weight: torch.Tensor, *, plastic: bool, decay: float,
                  record: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Run ``inputs [T, B, n_in]`` (float 0/1) through the liquid with per-sample weights ``weight [B, S]``
        (changed in place when ``plastic``). Returns spike counts ``[B, N]`` and the spikes ``[T, B, N]`` (bool)
        when ``record``."""
        T, B, _ = inputs.shape
        N, S = self.n_neurons, self.num_synapses
        dev, dt = weight.device, weight.dtype
        syn = self.synapses
        v = torch.zeros(B, N, device=dev, dtype=dt)
        cur = torch.zeros(B, N, device=dev, dtype=dt)
        refr = torch.zeros(B, N, device=dev, dtype=torch.int32)
        counts = torch.zeros(B, N, device=dev, dtype=dt)
        spikes = torch.zeros(T, B, N, device=dev, dtype=torch.bool) if record else None
        trace = torch.zeros(B, N + self.n_inputs, device=dev, dtype=dt)
        syn_decay = math.exp(-1.0 / self.tau_syn)
        astro = None
        if plastic and self.astrocyte:
            astro = Astrocyte(w=self.astro_w, bias=self.a_plus, initial=self.a_plus, tau=self.astro_tau, decay=decay)
            astro.reset(B, device=dev, dtype=dt)
        a_plus = self.a_plus
        flat_w, flat_cur = weight.view(-1), cur.view(-1)
        for t in range(T):
            u = inputs[t]
            s = (v >= self.threshold) & (refr <= 0)
            v = torch.where(s, 0.0, v)
            sf = s.to(dt)
            counts += sf
            if record:
                spikes[t] = s
            pre = torch.cat([sf, u], 1)  # liquid and input spikes: the pre-synaptic population
            # propagate: the out-synapses of every neuron or channel that spiked
            b_out, k_out = expand_events(pre, syn.out_ptr)
            cur.mul_(syn_decay)
            flat_cur.index_add_(0, b_out * N + syn.post.index_select(0, k_out), flat_w.index_select(0, b_out * S + k_out))
            v = v + cur - v / self.tau_v
            refr = torch.where(s, self.refractory, refr - 1)
            if plastic:
                a_minus = astro.a if astro is not None else a_plus
                sparse_stdp_step(weight, syn, pre, sf, trace, trace[:, :N], a_plus=a_plus, a_minus=a_minus,
                                 mirrored=self.mirrored, w_min=self.w_min, w_max=self.w_max,
                                 out_events=(b_out, k_out))
                trace = update_traces(trace, pre, self.trace_tau, increment=self.trace_increment,
                                      trace_update="add_decay")
                if astro is not None:
                    astro.step(sf, u)
                    astro.decay_step()
                a_plus *= decay
        return counts, spikes

    def simulate(self, inputs: torch.Tensor, *, record: bool = False) -> LiquidRun:
        """Present every sample of ``inputs [T, B, n_inputs]`` from ``W_INI`` (plasticity on for LSM+STDP and
        NALSM); returns the spike counts ``[B, N]``, the spikes ``[T, B, N]`` (bool, when ``record``) and every
        sample's weights ``[B, S]`` at the end of its presentation.

        On the CPU, torch's intra-op thread count is 1 for the duration of the call (process-wide, restored on
        return); the batch's chunks run on ``cpu_threads`` threads instead."""
        inputs = self._check_inputs(inputs)
        B = inputs.shape[1]
        bounds, threads = self._cpu_chunks(B) if inputs.device.type == "cpu" else ([0, B], 1)
        weight = self.w_ini.expand(B, -1).clone()

        def run(i: int) -> tuple[torch.Tensor, torch.Tensor | None]:
            with torch.no_grad():
                lo, hi = bounds[i], bounds[i + 1]
                return self._simulate(inputs[:, lo:hi], weight[lo:hi], plastic=self.stdp, decay=self.decay,
                                      record=record)

        n_chunks = len(bounds) - 1
        # torch releases the GIL inside every operation, so Python threads simulate chunks concurrently
        with _one_intra_op_thread(inputs.device):
            if threads <= 1:
                parts = [run(i) for i in range(n_chunks)]
            else:
                with ThreadPoolExecutor(threads) as pool:
                    parts = list(pool.map(run, range(n_chunks)))
        counts = torch.cat([p[0] for p in parts])
        spikes = torch.cat([p[1] for p in parts], 1) if record else None
        return LiquidRun(counts, spikes, weight)

    def _cpu_chunks(self, batch: int) -> tuple[list[int], int]:
        """Chunk boundaries of a CPU batch and the threads that run them: chunks of at most about
        ``cpu_chunk_synapses / S`` samples, as many chunks as threads at least, in a multiple of the threads and of
        equal size (within one sample), so that every thread gets the same work."""
        threads = self.cpu_threads if self.cpu_threads is not None else torch.get_num_threads()
        threads = max(1, min(int(threads), batch))
        per_chunk = max(1, self.cpu_chunk_synapses // max(1, self.num_synapses))
        n = math.ceil(math.ceil(batch / per_chunk) / threads) * threads
        n = min(n, batch)
        return [round(i * batch / n) for i in range(n + 1)], threads

    def forward(self, inputs: torch.Tensor, *, return_spikes: bool = False):
        """Present every sample of ``inputs [T, B, n_inputs]`` (binary spikes, one step per ms) from ``W_INI``, with
        plasticity on (LSM+STDP, NALSM); returns the spike count of every liquid neuron ``[B, N]`` (and the spikes
        ``[T, B, N]`` as bool when ``return_spikes``). No gradient flows: the liquid is not trained by backprop."""
        run = self.simulate(inputs, record=return_spikes)
        return (run.counts, run.spikes) if return_spikes else run.counts

    def initialise(self, train_inputs: torch.Tensor, *, steps: int = 20, probe: torch.Tensor | None = None,
                   probe_every: int = 100) -> list[tuple[int, float]]:
        """The unsupervised phase: samples ``train_inputs [T, n, n_inputs]`` one after the other, each for its first
        ``steps`` steps (20 ms in the paper), with plasticity and no decay; the weights carry over from sample to
        sample and become ``W_INI``. Starts from the initial weights. A plain LSM (``stdp=False``) is left unchanged.

        ``probe``: spikes ``[T, b, n_inputs]`` on which the branching factor is measured (with the presentation
        protocol, from the current weights) before the first sample, every ``probe_every`` samples and at the end.
        Returns ``[(samples seen, branching factor), ...]`` (empty without a probe).
        """
        train_inputs = self._check_inputs(train_inputs)
        steps = check_positive_int("steps", steps)
        probe_every = check_positive_int("probe_every", probe_every)
        if probe is not None:
            probe = self._check_inputs(probe)
        history: list[tuple[int, float]] = []
        n = train_inputs.shape[1]
        with torch.no_grad(), _one_intra_op_thread(train_inputs.device):
            weight = self.w_initial.clone().unsqueeze(0)
            self.w_ini.copy_(weight[0])
            if probe is not None:
                history.append((0, self.branching_factor(probe)))
            if not self.stdp:
                return history
            for i in range(n):
                self._simulate(train_inputs[:steps, i:i + 1], weight, plastic=True, decay=1.0, record=False)
                if probe is not None and ((i + 1) % probe_every == 0 or i + 1 == n):
                    self.w_ini.copy_(weight[0])
                    history.append((i + 1, self.branching_factor(probe)))
            self.w_ini.copy_(weight[0])
        return history

    def reset_weights(self) -> None:
        """Forget the initialisation: ``W_INI`` back to the initial weights."""
        with torch.no_grad():
            self.w_ini.copy_(self.w_initial)

    def branching_factor(self, inputs: torch.Tensor, *, window: int = 4, buffer: int = 25,
                         per_sample: bool = False):
        """The paper's branching factor of the liquid on ``inputs [T, B, n_inputs]`` (presented as in
        :meth:`forward`); see :func:`branching_factor`. A float (mean over samples) or ``[B]`` when ``per_sample``."""
        _, spikes = self.forward(inputs, return_spikes=True)
        pre, post = self.liquid_adjacency()
        return branching_factor(spikes, pre, post, self.n_neurons, window=window, buffer=buffer,
                                per_sample=per_sample)

    def fit_readout(self, states: torch.Tensor, labels: torch.Tensor, **kwargs) -> Readout:
        """A linear softmax classifier on spike counts ``states [B, N]`` (see :meth:`Readout.fit`)."""
        return Readout.fit(states, labels, **kwargs)

    @staticmethod
    def encode(rates: torch.Tensor, time_steps: int = 250, *, generator: torch.Generator | None = None):
        """Poisson input spikes ``[T, B, n]`` from firing probabilities per ms ``rates [B, n]`` in [0, 1]
        (:func:`snnkit.encoding.poisson`; see :func:`normalise_rates` for the paper's scaling)."""
        return poisson(rates, time_steps, generator=generator)


def branching_factor(spikes: torch.Tensor, pre: torch.Tensor, post: torch.Tensor, n_neurons: int, *,
                     window: int = 4, buffer: int = 25, per_sample: bool = False):
    """Branching factor of spiking activity (Ivanov & Michmizos 2021, reference ``compute_branching_factor.py``).

    Spikes in the first and last ``buffer`` steps are discarded. For every spike of neuron ``n`` at step ``t`` with
    ``buffer + window <= t < T - buffer - window``::

        bf(n, t) = #spikes of n's post-synaptic neurons in [t + 1, t + 1 + window)
                   / max(1, #spikes of n's pre-synaptic neurons in [t - window, t))

    ``bf`` is averaged over the spikes of each neuron, then over the neurons that spiked (NaN-mean), then over the
    samples (samples without any counted spike are left out). 1 is the critical value: activity neither dies
    out nor explodes.

    Args:
        spikes: ``[T, B, N]`` liquid spikes (0/1 or bool).
        pre, post: ``[S]`` the liquid -> liquid synapses ``pre[k] -> post[k]``.
        n_neurons: ``N``.
        window, buffer: in steps (4 and 25 in the reference code).
        per_sample: return ``[B]`` (NaN for samples without counted spikes) instead of the mean.
    """
    spikes = check_spikes("spikes", spikes, min_dim=3)
    window = check_positive_int("window", window)
    if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 0:
        raise ValueError(f"buffer must be an integer >= 0, got {buffer!r}")
    T, B, N = spikes.shape
    if N != n_neurons:
        raise ValueError(f"spikes has {N} neurons but n_neurons={n_neurons}")
    lo, hi = buffer + window, T - buffer - window
    if hi <= lo:
        raise ValueError(f"T={T} steps leave no time to measure: need T > 2 * (buffer + window) = "
                         f"{2 * (buffer + window)}")
    s = spikes.to(torch.float32).clone()
    s[:buffer] = 0
    s[T - buffer:] = 0
    c = torch.zeros(T + 1 + window + 1, B, N, dtype=torch.float32, device=s.device)
    c[1:T + 1] = torch.cumsum(s, 0)
    c[T + 1:] = c[T]
    ts = torch.arange(lo, hi, device=s.device)
    pre_win = c[ts] - c[ts - window]  # spikes in [t - window, t)
    post_win = c[ts + 1 + window] - c[ts + 1]  # spikes in [t + 1, t + 1 + window)
    # sum over neighbours: pre_count[., n] = sum_{m -> n} pre_win[., m]; post_count[., n] = sum_{n -> m} post_win[., m]
    pre, post = pre.to(s.device).long(), post.to(s.device).long()
    pre_count = torch.zeros_like(pre_win).index_add_(2, post, pre_win.index_select(2, pre))
    post_count = torch.zeros_like(post_win).index_add_(2, pre, post_win.index_select(2, post))
    ev = s[lo:hi]
    ratio = post_count / pre_count.clamp_min(1.0) * ev
    n_ev = ev.sum(0)  # [B, N]
    per_neuron = ratio.sum(0) / n_ev  # NaN where the neuron never spiked in the window
    has = n_ev > 0
    per_b = torch.where(has, per_neuron, 0.0).sum(1) / has.sum(1)  # NaN-mean over neurons
    if per_sample:
        return per_b
    ok = ~torch.isnan(per_b)
    return float(per_b[ok].mean()) if bool(ok.any()) else float("nan")


class Readout(nn.Module):
    """Linear softmax classifier on normalised spike counts: ``logits = W ((x - mean) / std) + b``.

    Build with :meth:`fit`; ``predict`` gives classes, ``accuracy`` the fraction right.
    """

    def __init__(self, n_features: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.linear = nn.Linear(n_features, num_classes)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.linear((states - self.mean) / self.std)

    @classmethod
    def fit(cls, states: torch.Tensor, labels: torch.Tensor, *, num_classes: int | None = None, epochs: int = 300,
            lr: float = 0.01, weight_decay: float = 1e-4, seed: int = 0) -> Readout:
        """Fit on ``states [B, N]`` (spike counts) and integer ``labels [B]``: per-feature standardisation from
        these states, then full-batch Adam on the cross-entropy for ``epochs`` steps."""
        states = check_tensor("states", states, min_dim=2)
        if states.dim() != 2:
            raise ValueError(f"states must be [B, N] spike counts, got shape {list(states.shape)}")
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or labels.shape != states.shape[:1]:
            raise ValueError(f"labels must be an integer tensor of shape [{states.shape[0]}]")
        epochs = check_positive_int("epochs", epochs)
        k = int(labels.max()) + 1 if num_classes is None else check_positive_int("num_classes", num_classes)
        g = torch.Generator().manual_seed(seed)
        model = cls(states.shape[1], k).to(states.device)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(states.shape[1])
            model.linear.weight.copy_((torch.rand(model.linear.weight.shape, generator=g) * 2 - 1) * bound)
            model.linear.bias.zero_()
            x = states.float()
            model.mean.copy_(x.mean(0))
            model.std.copy_(x.std(0).clamp_min(1e-3) if x.shape[0] > 1 else torch.ones_like(x[0]))
        opt = torch.optim.Adam(model.linear.parameters(), lr=lr, weight_decay=weight_decay)
        y = labels.long()
        for _ in range(epochs):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return model.eval()

    @torch.no_grad()
    def predict(self, states: torch.Tensor) -> torch.Tensor:
        return self(states.float()).argmax(-1)

    @torch.no_grad()
    def accuracy(self, states: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.predict(states) == labels).float().mean())
