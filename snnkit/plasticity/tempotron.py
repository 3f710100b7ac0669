"""The Tempotron: a single leaky integrate-and-fire neuron that learns to fire (or not) for spike patterns.

Guetig & Sompolinsky 2006, "The tempotron: a neuron that learns spike timing-based decisions", Nature Neuroscience
9(3):420-428. A binary classifier: class 1 ("fire") when the potential reaches the threshold at least once during
the pattern, class 0 ("stay silent") otherwise.

Equations (time in ms, one step = ``dt`` ms; an input spike at step ``t_i`` is at time ``t_i * dt``)::

    K(t)  = V0 (exp(-t / tau) - exp(-t / tau_s))  for t >= 0, else 0           (PSP kernel)
    V0    = 1 / (exp(-t_peak / tau) - exp(-t_peak / tau_s)),                    (so max_t K(t) = 1)
    t_peak = tau tau_s ln(tau / tau_s) / (tau - tau_s)
    V(t)  = sum_i w_i sum_{t_i <= t} K(t - t_i)                                (V_rest = 0)
    class = 1 if max_t V(t) >= threshold else 0

Learning (only on an error): with ``t_max`` the step of the maximal potential,
``dw_i = +lr * sum_{t_i <= t_max} K(t_max - t_i)`` for a missed class-1 pattern and ``-lr * (same)`` for a class-0
pattern that made the neuron fire (``K(0) = 0``, so ``t_i <= t_max`` and ``t_i < t_max`` give the same sum).
A batch adds up the changes of its patterns, all computed with the weights before the step.

Implementation: the per-input PSP sums ``P[t, b, i] = sum_{t_i <= t} K(t - t_i)`` are two exponential filters,
``a_t = exp(-dt/tau) a_{t-1} + s_t``, ``b_t = exp(-dt/tau_s) b_{t-1} + s_t``, ``P = V0 (a - b)``, exact for the kernel
above; ``V = P @ w`` and the rule's sum is ``P[t_max]``.

Simplifications (documented choices): the paper's shunting of inputs after an output spike is not modelled (it
does not change whether the neuron fires, which is all the classifier uses; ``t_max`` is taken on the unshunted
potential); plain steps without the paper's momentum term; ``t_max`` is searched only among the steps at which
some PSP is active (``sum_i P[t, i] > 0``). Taken over all steps, a class-1 pattern whose potential stays below
rest would have its maximum at rest, before any PSP, where ``P = 0``: the paper's rule would never change it and
training could stall there (it did in our tests with full-batch steps). A pattern without any input spike is never
updated. Prediction uses the maximum over all steps (``V_rest = 0``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..validation import check_positive_int, check_real, check_tensor
from ._checks import check_spikes, check_time_constant

__all__ = ["Tempotron", "psp_kernel", "psp_norm", "psp_peak_time", "tempotron_psp"]

LABEL_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _check_taus(tau, tau_s) -> tuple[float, float]:
    tau = check_time_constant("tau", tau)
    tau_s = check_time_constant("tau_s", tau_s)
    if tau <= tau_s:
        raise ValueError(f"tau must be > tau_s (the membrane decays slower than the synaptic current), got "
                         f"tau={tau} and tau_s={tau_s}")
    return tau, tau_s


def psp_peak_time(tau: float = 15.0, tau_s: float = 3.75) -> float:
    """The time at which ``exp(-t/tau) - exp(-t/tau_s)`` peaks: ``tau tau_s ln(tau/tau_s) / (tau - tau_s)``."""
    tau, tau_s = _check_taus(tau, tau_s)
    return tau * tau_s * math.log(tau / tau_s) / (tau - tau_s)


def psp_norm(tau: float = 15.0, tau_s: float = 3.75) -> float:
    """``V0``, the factor that makes the kernel's peak exactly 1."""
    tp = psp_peak_time(tau, tau_s)
    return 1.0 / (math.exp(-tp / tau) - math.exp(-tp / tau_s))


def psp_kernel(t: torch.Tensor, tau: float = 15.0, tau_s: float = 3.75) -> torch.Tensor:
    """``K(t)`` at the times ``t`` (a floating tensor, in the units of ``tau``); 0 for ``t < 0``."""
    check_tensor("t", t)
    v0 = psp_norm(tau, tau_s)
    tc = t.clamp(min=0)
    k = v0 * (torch.exp(-tc / tau) - torch.exp(-tc / tau_s))
    return torch.where(t >= 0, k, torch.zeros_like(k))


def tempotron_psp(spikes: torch.Tensor, tau: float = 15.0, tau_s: float = 3.75, dt: float = 1.0) -> torch.Tensor:
    """Per-input PSP sums ``P[t, ..., i] = sum_{t_i <= t} K((t - t_i) dt)`` of spikes ``[T, ..., n]`` (same shape).

    Floating spikes keep their dtype; others become the default dtype.
    """
    spikes = check_spikes("spikes", spikes, min_dim=1)
    tau, tau_s = _check_taus(tau, tau_s)
    dt = check_time_constant("dt", dt)
    s = spikes if spikes.is_floating_point() else spikes.to(torch.get_default_dtype())
    return _psp(s, tau, tau_s, dt)


def initial_weights(shape: tuple[int, ...], init_std, generator) -> nn.Parameter:
    """Synaptic weights drawn from ``N(0, init_std^2)`` (``generator``: a ``torch.Generator`` or None), not trained by
    autograd (the tempotron rules update them in place)."""
    init_std = check_real("init_std", init_std)
    if init_std < 0:
        raise ValueError(f"init_std must be >= 0, got {init_std}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return nn.Parameter(torch.randn(shape, generator=generator) * init_std, requires_grad=False)


def pattern_spikes(spikes, weight: torch.Tensor, owner: str) -> torch.Tensor:
    """Input patterns ``[T, B, n_inputs]`` of 0/1 spikes for a classifier whose weights end in ``n_inputs``,
    on the weights' device, cast to their dtype."""
    n_inputs = weight.shape[-1]
    spikes = check_spikes("spikes", spikes, min_dim=3)
    if spikes.dim() != 3 or spikes.shape[-1] != n_inputs:
        raise ValueError(f"spikes must be [T, B, n_inputs={n_inputs}], got {list(spikes.shape)}")
    if spikes.device != weight.device:
        raise ValueError(f"spikes are on {spikes.device} but {owner} is on {weight.device}")
    return spikes.to(weight.dtype)


def _psp(s: torch.Tensor, tau: float, tau_s: float, dt: float) -> torch.Tensor:
    da, db = math.exp(-dt / tau), math.exp(-dt / tau_s)
    v0 = psp_norm(tau, tau_s)
    out = torch.empty_like(s)
    a = torch.zeros_like(s[0])
    b = torch.zeros_like(s[0])
    for t in range(s.shape[0]):
        a = da * a + s[t]
        b = db * b + s[t]
        out[t] = a - b
    return out.mul_(v0)


class Tempotron(nn.Module):
    """A binary spike-pattern classifier trained with the Tempotron rule (Guetig & Sompolinsky 2006).

    Equations and choices: this module's docstring.

    Args:
        n_inputs: number of input channels.
        tau, tau_s: membrane and synaptic time constants in ms, ``tau > tau_s > 0``. Defaults 15 and 3.75 (the
            paper's values, ``tau_s = tau / 4``).
        threshold: firing threshold (``V_rest = 0``; the paper's ``V_thr = 1`` with PSPs of peak 1).
        lr: learning rate of the rule (not taken from the paper; the paper also uses momentum, not done here).
        dt: ms per time step (default 1).
        init_std: standard deviation of the Gaussian initial weights (mean 0).
        generator: ``torch.Generator`` for the initial weights (and the shuffling in :meth:`fit`).

    ``weight [n_inputs]`` is an ``nn.Parameter`` without gradient (it is trained by the rule, not by autograd), so
    it follows ``.to(device, dtype)`` and ``state_dict``.
    """

    def __init__(self, n_inputs: int, tau: float = 15.0, tau_s: float = 3.75, threshold: float = 1.0,
                 lr: float = 0.05, *, dt: float = 1.0, init_std: float = 0.1,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_inputs = check_positive_int("n_inputs", n_inputs)
        self.tau, self.tau_s = _check_taus(tau, tau_s)
        self.threshold = check_real("threshold", threshold)
        self.lr = check_real("lr", lr)
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        self.dt = check_time_constant("dt", dt)
        self.weight = initial_weights((self.n_inputs,), init_std, generator)

    def extra_repr(self) -> str:
        return (f"n_inputs={self.n_inputs}, tau={self.tau}, tau_s={self.tau_s}, threshold={self.threshold}, "
                f"lr={self.lr}, dt={self.dt}")

    # ---- helpers -------------------------------------------------------------------------------------------------
    def _spikes(self, spikes) -> torch.Tensor:
        return pattern_spikes(spikes, self.weight, "the Tempotron")

    def _labels(self, y, batch: int) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"y must be a torch.Tensor of integer labels 0/1, got {type(y).__name__}")
        if y.dtype not in LABEL_DTYPES:
            raise TypeError(f"y must hold integer (or bool) labels 0/1, got {y.dtype}")
        if y.shape != (batch,):
            raise ValueError(f"y must have shape [B] = [{batch}], got {list(y.shape)}")
        if y.device != self.weight.device:
            raise ValueError(f"y is on {y.device} but the Tempotron is on {self.weight.device}")
        y = y.long()
        if y.device.type == "cpu":
            if not bool(((y == 0) | (y == 1)).all()):
                raise ValueError("y must hold the labels 0 and 1 only (the Tempotron is a binary classifier)")
        else:
            torch._assert_async(((y == 0) | (y == 1)).all(), "y must hold the labels 0 and 1 only")
        return y

    def _psp(self, spikes: torch.Tensor) -> torch.Tensor:
        return _psp(spikes, self.tau, self.tau_s, self.dt)

    # ---- inference -----------------------------------------------------------------------------------------------
    def psp(self, spikes: torch.Tensor) -> torch.Tensor:
        """Per-input PSP sums ``[T, B, n_inputs]`` (the rule's ``sum_{t_i <= t} K(t - t_i)``)."""
        return self._psp(self._spikes(spikes))

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """The potential ``V [T, B]`` for input spikes ``[T, B, n_inputs]`` (0/1)."""
        return self._psp(self._spikes(spikes)) @ self.weight

    def predict(self, spikes: torch.Tensor) -> torch.Tensor:
        """Class per pattern, ``long [B]``: 1 when the potential reaches the threshold, else 0."""
        with torch.no_grad():
            return (self(spikes).amax(dim=0) >= self.threshold).long()

    def score(self, spikes: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of :meth:`predict` against the labels ``y [B]``."""
        pred = self.predict(spikes)
        return float((pred == self._labels(y, pred.shape[0])).double().mean())

    # ---- learning ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def fit_step(self, spikes: torch.Tensor, y: torch.Tensor) -> int:
        """One Tempotron step on a batch ``spikes [T, B, n_inputs]``, labels ``y [B]`` (0/1); returns the errors.

        Every misclassified pattern contributes ``±lr * P[t_max]``; the contributions are added and applied once.
        """
        s = self._spikes(spikes)
        y = self._labels(y, s.shape[1])
        p = self._psp(s)                                  # [T, B, n]
        v = p @ self.weight                               # [T, B]
        fired = v.amax(dim=0) >= self.threshold           # [B], as predict()
        # t_max among the steps where some PSP is active (P >= 0, so a positive sum): see the module docstring.
        active = p.sum(dim=-1) > 0                        # [T, B]
        tmax = torch.where(active, v, torch.full_like(v, -math.inf)).argmax(dim=0)   # [B]
        sign = (y == 1) & ~fired                          # missed class 1: +1
        sign = sign.to(p.dtype) - ((y == 0) & fired).to(p.dtype)   # false alarm: -1
        p_at_max = p.gather(0, tmax.view(1, -1, 1).expand(1, -1, self.n_inputs)).squeeze(0)  # [B, n]
        sign = sign * active.any(dim=0).to(p.dtype)      # a pattern without any input spike cannot be changed
        self.weight.add_(self.lr * (sign @ p_at_max))
        return int((sign != 0).sum())

    def fit(self, spikes: torch.Tensor, y: torch.Tensor, epochs: int = 10, *, batch_size: int | None = 1,
            generator: torch.Generator | None = None, stop_when_perfect: bool = True) -> list[int]:
        """Train for up to ``epochs`` passes over ``spikes [T, N, n_inputs]`` with labels ``y [N]``.

        ``batch_size`` patterns per :meth:`fit_step` (default 1: the paper's online learning, one pattern at a time;
        None: all ``N`` in one step, which converges in more epochs); the order is shuffled each epoch with
        ``generator`` (kept in order when None). Stops after an epoch without errors
        when ``stop_when_perfect`` (no step changed the weights, so the training set is classified perfectly).
        Returns the number of errors of each epoch.
        """
        s = self._spikes(spikes)
        y = self._labels(y, s.shape[1])
        epochs = check_positive_int("epochs", epochs)
        n = s.shape[1]
        bs = n if batch_size is None else check_positive_int("batch_size", batch_size)
        history = []
        for _ in range(epochs):
            if generator is not None:
                order = torch.randperm(n, generator=generator).to(s.device)
            else:
                order = torch.arange(n, device=s.device)
            errors = 0
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                errors += self.fit_step(s[:, idx], y[idx])
            history.append(errors)
            if errors == 0 and stop_when_perfect:
                break
        return history
