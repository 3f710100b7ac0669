"""Competition for unsupervised STDP: k-winners-take-all lateral inhibition and homeostatic thresholds.

Plain pair STDP on one layer drives every neuron towards the same dominant input correlations: nothing makes two
neurons learn different features. The two mechanisms of Diehl & Cook (2015, "Unsupervised learning of digit
recognition using spike-timing-dependent plasticity", Front. Comput. Neurosci. 9:99) supply that pressure:

- **lateral inhibition**, here as its limit of instantaneous, strong inhibition: at each step at most ``k`` neurons
  keep their spike, those with the largest drive (:func:`k_winners_take_all`);
- **homeostasis**: a neuron that fires more than a target rate gets a higher threshold, one that stays silent a
  lower one (:class:`Homeostasis`), so every neuron ends up winning for some inputs.

:class:`CompetitiveSTDPLayer` puts them together with :class:`~snnkit.plasticity.STDP` and weight normalisation
around any snnkit neuron (``LIF``, ``MetaNeuron``, ...): ``Linear -> minus threshold offsets -> neuron -> k-WTA``.

Diehl & Cook's thresholds grow by a fixed step at every spike and decay over ~10^7 ms; we adapt them once per batch
towards a target rate instead (``theta_i += eta (r_i - r_target)``, ``r_i`` the neuron's mean spikes per step), which
is the same fixed point without a second time constant to tune, and is deterministic for a given batch.
"""

from __future__ import annotations

import torch
from torch import nn

from ..validation import check_finite, check_positive_int, check_real, check_tensor
from ._checks import check_spikes
from .stdp import STDP

__all__ = ["CompetitiveSTDPLayer", "Homeostasis", "k_winners_take_all"]


def k_winners_take_all(spikes: torch.Tensor, drive: torch.Tensor, k: int) -> torch.Tensor:
    """Keep, at every step and sample, the spikes of at most ``k`` neurons: those with the largest ``drive``.

    ``spikes`` and ``drive`` are ``[T, ..., N]`` (neurons in the last dim). A neuron that spiked but is not among the
    ``k`` largest drives of its step loses its spike; a neuron that did not spike never gains one. Ties are broken
    by ``torch.topk`` (lowest index first on CPU). Returns spikes of ``spikes.dtype``.

    This is lateral inhibition in the limit of a strong, instantaneous inhibitory pool (Diehl & Cook 2015): the
    losers are silenced in the step they would have fired. Applied to a neuron's output, the losers' membranes have
    already been reset by their own (suppressed) spike, which is what strong shunting inhibition does too.
    """
    check_spikes("spikes", spikes, min_dim=2)
    check_tensor("drive", drive, min_dim=2, time_first=True)
    if drive.shape != spikes.shape:
        raise ValueError(f"drive must have the shape of spikes {list(spikes.shape)}, got {list(drive.shape)}")
    if drive.device.type == "cpu":
        check_finite("drive", drive)  # topk ranks NaN above every number: a NaN drive would always win
    k = check_positive_int("k", k)
    n = spikes.shape[-1]
    if k >= n:
        return spikes
    # Losers' drives are pushed below every winner's, so top-k picks among the neurons that did spike.
    score = torch.where(spikes.bool(), drive.to(torch.float32), torch.tensor(float("-inf"), device=drive.device))
    idx = score.topk(k, dim=-1).indices
    keep = torch.zeros_like(spikes, dtype=torch.bool).scatter_(-1, idx, True)
    return spikes * keep.to(spikes.dtype)


class Homeostasis(nn.Module):
    """Per-neuron threshold offsets that move each neuron's firing rate towards ``target_rate``.

    ``theta_i <- theta_i + eta * (r_i - target_rate)`` after each :meth:`update`, with ``r_i`` the mean number of
    spikes per step of neuron ``i`` over the batch's steps and samples. The offsets are a buffer ``theta [n]``
    (saved in the ``state_dict``); subtract them from a neuron's input current (:meth:`forward`).

    Args:
        n: number of neurons.
        target_rate: spikes per neuron per step to aim for, in (0, 1).
        eta: adaptation rate (threshold units per unit of rate error).
    """

    def __init__(self, n: int, target_rate: float = 0.05, eta: float = 1.0) -> None:
        super().__init__()
        self.n = check_positive_int("n", n)
        rate = check_real("target_rate", target_rate)
        if not 0.0 < rate < 1.0:
            raise ValueError(f"target_rate must be a firing rate in (0, 1) spikes per step, got {rate}")
        self.target_rate = rate
        self.eta = check_real("eta", eta)
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")
        self.register_buffer("theta", torch.zeros(n))

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        """``current - theta``, broadcast over the leading dims of ``current [..., n]``."""
        if current.shape[-1] != self.n:
            raise ValueError(f"current's last dim must be n = {self.n}, got shape {list(current.shape)}")
        return current - self.theta.to(current.dtype)

    @torch.no_grad()
    def update(self, spikes: torch.Tensor) -> torch.Tensor:
        """Adapt ``theta`` from ``spikes [T, ..., n]``; returns the rates ``r [n]`` that were used."""
        spikes = check_spikes("spikes", spikes, min_dim=2)
        if spikes.shape[-1] != self.n:
            raise ValueError(f"spikes' last dim must be n = {self.n}, got shape {list(spikes.shape)}")
        rate = spikes.reshape(-1, self.n).to(self.theta.dtype).mean(0)
        self.theta.add_(self.eta * (rate - self.target_rate))
        return rate

    def extra_repr(self) -> str:
        return f"n={self.n}, target_rate={self.target_rate}, eta={self.eta}"


class CompetitiveSTDPLayer(nn.Module):
    """An unsupervised feature layer: ``Linear (no bias, weights >= 0) -> - theta -> neuron -> k-WTA``, trained by
    STDP with competition (Diehl & Cook 2015's ingredients; see the module doc).

    :meth:`forward` maps ``x [T, B, n_in]`` to spikes ``[T, B, n_out]`` and learns nothing. :meth:`learn` runs the
    same forward and then, under ``no_grad``: the STDP change on the winners' spikes, weights clipped to
    ``[0, w_max]``, each neuron's incoming weights rescaled to a fixed total (so a neuron can only redistribute its
    drive over its inputs, never grow without bound), and the homeostatic threshold step.

    Args:
        n_in, n_out: input and output widths.
        neuron: any snnkit neuron in step mode "m" (``LIF``, ``MetaNeuron``, ...) of width ``n_out``.
        k: winners per step (default ``max(1, n_out // 10)``).
        stdp: the rule (default ``STDP(tau_pre=5, tau_post=5, a_plus=0.01, a_minus=0.005, w_min=0, w_max=1)``:
            windows of a few steps, as the inputs are binned at several milliseconds per step).
        target_rate, eta: for :class:`Homeostasis`.
        generator: ``torch.Generator`` for the initial weights, uniform in ``[0, 2 / sqrt(n_in)]``.
    """

    def __init__(self, n_in: int, n_out: int, neuron: nn.Module, *, k: int | None = None, stdp: STDP | None = None,
                 target_rate: float = 0.05, eta: float = 1.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_in = check_positive_int("n_in", n_in)
        self.n_out = check_positive_int("n_out", n_out)
        self.k = check_positive_int("k", max(1, n_out // 10) if k is None else k)
        self.linear = nn.Linear(n_in, n_out, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.rand(n_out, n_in, generator=generator) * (2.0 / n_in ** 0.5))
        self.linear.weight.requires_grad_(False)
        self.neuron = neuron
        self.homeostasis = Homeostasis(n_out, target_rate, eta)
        self.stdp = stdp if stdp is not None else STDP(tau_pre=5.0, tau_post=5.0, a_plus=0.01, a_minus=0.005,
                                                        w_min=0.0, w_max=1.0)
        self.register_buffer("row_sum", self.linear.weight.sum(1).mean())

    def _drive_and_spikes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_tensor("x", x, min_dim=3, dtypes=None, time_first=True)
        if x.shape[-1] != self.n_in:
            raise ValueError(f"x's last dim must be n_in = {self.n_in}, got shape {list(x.shape)}")
        drive = self.homeostasis(self.linear(x.to(self.linear.weight.dtype)))
        spikes = self.neuron(drive)
        return drive, k_winners_take_all(spikes, drive, self.k)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._drive_and_spikes(x)[1]

    @torch.no_grad()
    def learn(self, x: torch.Tensor) -> torch.Tensor:
        """One unsupervised step on the batch ``x [T, B, n_in]`` (binary spikes); returns the layer's spikes."""
        check_spikes("x", x, min_dim=3)
        _, post = self._drive_and_spikes(x)
        self.stdp.update(self.linear, x, post)
        w = self.linear.weight
        w.mul_(self.row_sum / w.sum(1, keepdim=True).clamp_min(1e-12))
        self.homeostasis.update(post)
        return post

    def extra_repr(self) -> str:
        return f"n_in={self.n_in}, n_out={self.n_out}, k={self.k}"
