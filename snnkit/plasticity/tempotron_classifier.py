"""A multi-class Tempotron: one tempotron per class, the class whose potential peaks highest wins.

The binary :class:`~snnkit.plasticity.Tempotron` (Guetig & Sompolinsky 2006) answers "fire or not". For ``C``
classes, ``C`` tempotrons share the input PSPs ``P [T, B, n]`` (computed once) and each has its weights ``W[c]``:

    V_c(t) = sum_i W[c, i] (P_i(t) - mu_i)          class = argmax_c max_t V_c(t)

Learning, only on an error, always the Tempotron step ``+-lr (P(t_max) - mu)`` at a neuron's own peak time:

- ``rule="wta"`` (default): when the winning class ``k`` is not the label ``y``, potentiate ``W[y]`` at ``y``'s
  peak and depress ``W[k]`` at ``k``'s peak (the winner-take-all readout of competing tempotrons). The decision
  uses the peaks only, so no threshold is needed.
- ``rule="one_vs_rest"``: tempotron ``c`` must reach ``threshold`` for its class and stay below it for every other
  class; each tempotron takes the binary rule on its own errors. Prediction is still the highest peak.

``mu`` (``center=True``, the default) is each input's mean PSP over the training set, set by :meth:`fit`. We
deliberately depart from the binary Tempotron here: on dense trains (binned audio, a hidden layer firing at 20%)
every input's PSP carries a large common mode, all tempotrons peak where the total input peaks, and the rule does
not converge (on the bundled spoken digits the uncentred rule stays at chance while the centred one reaches
40-55%). Subtracting ``mu`` is a tonic inhibitory input per channel; it leaves sparse, balanced inputs unchanged
in effect. With ``center=False``, ``mu = 0``.

Peak times are searched over all steps (with centring, ``P - mu`` is negative before any input, so the binary
Tempotron's "active steps only" guard is not needed).
"""

from __future__ import annotations

import torch
from torch import nn

from ..validation import check_bool, check_positive_int, check_real
from ._checks import check_option, check_time_constant
from .tempotron import LABEL_DTYPES, _check_taus, _psp, initial_weights, pattern_spikes

__all__ = ["TEMPOTRON_RULES", "TempotronClassifier"]

TEMPOTRON_RULES = ("wta", "one_vs_rest")


class TempotronClassifier(nn.Module):
    """``C`` tempotrons on the same inputs, read out by the highest peak potential (equations in the module doc).

    Args:
        n_inputs: input channels.
        n_classes: number of classes (>= 2).
        tau, tau_s, dt: the PSP kernel, as :class:`~snnkit.plasticity.Tempotron` (ms; ``dt`` ms per step).
        threshold: firing threshold of the "one_vs_rest" rule (unused by "wta").
        lr: learning rate of the rule.
        rule: "wta" or "one_vs_rest".
        center: subtract each input's mean training PSP (see the module doc).
        init_std: standard deviation of the Gaussian initial weights.
        generator: ``torch.Generator`` for the initial weights (and the shuffling in :meth:`fit`).

    ``weight [C, n_inputs]`` and ``mu [n_inputs]`` follow ``.to()`` and ``state_dict``.
    """

    def __init__(self, n_inputs: int, n_classes: int, *, tau: float = 15.0, tau_s: float = 3.75,
                 dt: float = 1.0, threshold: float = 1.0, lr: float = 0.01, rule: str = "wta", center: bool = True,
                 init_std: float = 0.01, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_inputs = check_positive_int("n_inputs", n_inputs)
        self.n_classes = check_positive_int("n_classes", n_classes)
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {self.n_classes}")
        self.tau, self.tau_s = _check_taus(tau, tau_s)
        self.dt = check_time_constant("dt", dt)
        self.threshold = check_real("threshold", threshold)
        self.lr = check_time_constant("lr", lr)
        self.rule = check_option("rule", rule, TEMPOTRON_RULES)
        self.center = check_bool("center", center)
        self.weight = initial_weights((self.n_classes, self.n_inputs), init_std, generator)
        self.register_buffer("mu", torch.zeros(self.n_inputs))

    def extra_repr(self) -> str:
        return (f"n_inputs={self.n_inputs}, n_classes={self.n_classes}, rule={self.rule!r}, center={self.center}, "
                f"tau={self.tau}, tau_s={self.tau_s}, lr={self.lr}")

    def _spikes(self, spikes) -> torch.Tensor:
        return pattern_spikes(spikes, self.weight, "the classifier")

    def _labels(self, y, batch: int) -> torch.Tensor:
        if not isinstance(y, torch.Tensor) or y.dtype not in LABEL_DTYPES or y.dtype == torch.bool:
            raise TypeError(f"y must be an integer tensor of class labels, got "
                            f"{y.dtype if isinstance(y, torch.Tensor) else type(y).__name__}")
        if y.shape != (batch,):
            raise ValueError(f"y must have shape [B] = [{batch}], got {list(y.shape)}")
        y = y.to(self.weight.device, torch.long)
        if bool(((y < 0) | (y >= self.n_classes)).any()):
            raise ValueError(f"y must hold class labels in [0, {self.n_classes - 1}], got "
                             f"{int(y.min())}..{int(y.max())}")
        return y

    def _centered_psp(self, s: torch.Tensor) -> torch.Tensor:
        return _psp(s, self.tau, self.tau_s, self.dt) - self.mu

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        """The potentials ``V [T, B, C]`` for input spikes ``[T, B, n_inputs]``."""
        return self._centered_psp(self._spikes(spikes)) @ self.weight.T

    @torch.no_grad()
    def predict(self, spikes: torch.Tensor) -> torch.Tensor:
        """Class per pattern, ``long [B]``: the tempotron whose potential peaks highest."""
        return self(spikes).amax(dim=0).argmax(dim=1)

    def score(self, spikes: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of :meth:`predict` against labels ``y [B]``."""
        pred = self.predict(spikes)
        return float((pred == self._labels(y, pred.shape[0])).double().mean())

    @torch.no_grad()
    def fit_step(self, spikes: torch.Tensor, y: torch.Tensor) -> int:
        """One step of the rule on a batch; every error's change is computed with the weights before the step.

        Returns the number of misclassified patterns (by the highest peak) in the batch.
        """
        s = self._spikes(spikes)
        y = self._labels(y, s.shape[1])
        return self._step(self._centered_psp(s), y)

    def _step(self, p: torch.Tensor, y: torch.Tensor) -> int:
        v = p @ self.weight.T                                 # [T, B, C]
        peak, tmax = v.max(dim=0)                             # [B, C]
        pred = peak.argmax(dim=1)
        batch = torch.arange(p.shape[1], device=p.device)
        sign = torch.zeros_like(peak)                         # [B, C]: +1 potentiate, -1 depress, 0 leave
        if self.rule == "wta":
            wrong = pred != y
            sign[batch[wrong], y[wrong]] = 1.0
            sign[batch[wrong], pred[wrong]] = -1.0
        else:
            target = nn.functional.one_hot(y, self.n_classes).bool()
            fired = peak >= self.threshold
            sign = (target & ~fired).to(p.dtype) - (~target & fired).to(p.dtype)
        # P at each tempotron's own peak step: [B, C, n]
        p_at = p.permute(1, 0, 2).gather(1, tmax.unsqueeze(-1).expand(-1, -1, self.n_inputs))
        self.weight.add_(self.lr * torch.einsum("bc,bcn->cn", sign, p_at))
        return int((pred != y).sum())

    def fit(self, spikes: torch.Tensor, y: torch.Tensor, epochs: int = 20, *, batch_size: int = 32,
            generator: torch.Generator | None = None) -> list[int]:
        """Train for ``epochs`` passes over ``spikes [T, N, n_inputs]``, labels ``y [N]``; sets ``mu`` first when
        ``center``. The order is shuffled each epoch with ``generator`` (kept when None). Returns the errors per
        epoch (counted before each step's change)."""
        s = self._spikes(spikes)
        y = self._labels(y, s.shape[1])
        epochs = check_positive_int("epochs", epochs)
        bs = check_positive_int("batch_size", batch_size)
        raw = _psp(s, self.tau, self.tau_s, self.dt)
        if self.center:
            self.mu.copy_(raw.mean(dim=(0, 1)))
        p = raw - self.mu
        n = s.shape[1]
        history = []
        for _ in range(epochs):
            order = (torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)).to(s.device)
            history.append(sum(self._step(p[:, order[i:i + bs]], y[order[i:i + bs]]) for i in range(0, n, bs)))
        return history
