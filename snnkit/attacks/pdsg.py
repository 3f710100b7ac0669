"""Swap the victim's surrogate gradient for the attack: :func:`pdsg` (the potential-dependent surrogate gradient of
Lun et al., CVPR 2025) or any fixed surrogate (:func:`swap_surrogate`), restored on exit.

The victim's training surrogate is invisible to an attacker; PDSG replaces it by a Gaussian whose width follows the
membrane potentials the attacker can observe::

    sg'(u) = N(u; sigma / 2, sigma) = exp(-(u - sigma / 2)^2 / (2 sigma^2)) / (sqrt(2 pi) sigma),   u = h - v_th

with ``sigma`` the running standard deviation of the detached potentials per channel (conv) or feature (linear),
0 -> 1 (:func:`snnkit.surrogate.pdsg_sigma`). On snnkit neurons the swap sets ``neuron.surrogate =
snnkit.surrogate.PDSG()``, computed inside the LIF op (CPU loop and Triton backward). On SpikingJelly neurons it
replaces ``surrogate_function`` by :class:`SpikingJellyPDSG`, a module that keeps the potentials of the steps of the
current sequence (SpikingJelly calls it once per step, in single- and multi-step mode; a Python callable makes
SpikingJelly take its PyTorch path). A sequence starts where the neuron's state does: a forward pre-hook clears the
recorded potentials whenever the neuron's ``v`` is not a tensor yet, i.e. after ``reset()`` (``functional.reset_net``),
so a model driven one step per call keeps its running widths across the steps of one sequence.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..neurons import StatefulNeuron
from ..surrogate import PDSG, Surrogate, pdsg_sigma, pdsg_spike
from .model import require_spiking, spiking_neurons

__all__ = ["pdsg", "swap_surrogate", "SpikingJellyPDSG", "SpikingJellySurrogate"]


class SpikingJellyPDSG(nn.Module):
    """PDSG as a SpikingJelly ``surrogate_function``: ``forward(u)`` for one step ``u = h - v_th [B, C, ...]``.

    Keeps the detached ``u`` of every step since :meth:`clear` (a standard deviation does not see the threshold's
    shift, so these give the widths of ``h``) and uses ``pdsg_sigma`` of their stack, channel at dim 1 of a step,
    exactly as the snnkit LIF op does over ``[T, B, C, ...]``.
    """

    spiking = True  # SpikingJelly reads this flag on surrogate functions

    def __init__(self) -> None:
        super().__init__()
        self._steps: list[torch.Tensor] = []

    def clear(self) -> None:
        """Forget the recorded potentials (a new sequence starts)."""
        self._steps = []

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self._steps and (self._steps[-1].shape != u.shape or self._steps[-1].device != u.device):
            self._steps = []  # another input shape: a new sequence, never mixed with the last one
        self._steps.append(u.detach())
        sigma = pdsg_sigma(torch.stack(self._steps))[-1]
        shape = [1, -1] + [1] * (u.dim() - 2) if u.dim() >= 2 else [-1]
        return pdsg_spike(u, sigma.to(u.dtype).view(shape))


class SpikingJellySurrogate(nn.Module):
    """A fixed snnkit surrogate as a SpikingJelly ``surrogate_function`` (Heaviside forward, its derivative back)."""

    spiking = True

    def __init__(self, surrogate: Surrogate) -> None:
        super().__init__()
        self.surrogate = surrogate

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.surrogate(u)


def _clear_on_fresh_state(neuron: nn.Module, args) -> None:
    # SpikingJelly keeps v as the float v_reset until the first step after reset(): a new sequence begins.
    if not isinstance(getattr(neuron, "v", None), torch.Tensor):
        neuron.surrogate_function.clear()


@contextmanager
def swap_surrogate(model: nn.Module, surrogate: Surrogate) -> Iterator[nn.Module]:
    """Within the block every spiking neuron of ``model`` uses ``surrogate``; the originals come back on exit, also
    on an exception. snnkit neurons with a ``surrogate`` attribute (LIF, ParametricLIF) and SpikingJelly neurons
    with a ``surrogate_function`` are swapped; a model with other neurons only (e.g. MetaNeuron's straight-through
    estimator) raises ``ValueError``.

    Args:
        model: the victim (snnkit or SpikingJelly 2.0 neurons).
        surrogate: a :class:`snnkit.surrogate.Surrogate`; :class:`~snnkit.surrogate.PDSG` measures its widths.
    """
    require_spiking("model", model)
    if not isinstance(surrogate, Surrogate):
        raise TypeError(f"surrogate must be a snnkit.surrogate.Surrogate, got {type(surrogate).__name__}")
    swapped: list[tuple[nn.Module, str, object]] = []
    hooks = []
    try:
        for m in spiking_neurons(model):
            if isinstance(m, StatefulNeuron):
                if isinstance(getattr(m, "surrogate", None), Surrogate):
                    swapped.append((m, "surrogate", m.surrogate))
                    m.surrogate = surrogate
            elif hasattr(m, "surrogate_function"):
                swapped.append((m, "surrogate_function", m.surrogate_function))
                if isinstance(surrogate, PDSG):
                    m.surrogate_function = SpikingJellyPDSG()
                    hooks.append(m.register_forward_pre_hook(_clear_on_fresh_state))
                else:
                    m.surrogate_function = SpikingJellySurrogate(surrogate)
                if getattr(m, "backend", "torch") != "torch":  # SpikingJelly 0.0.0.0.14's CuPy path: no callables
                    swapped.append((m, "backend", m.backend))
                    m.backend = "torch"
        if not swapped:
            raise ValueError(f"model ({type(model).__name__}) has no neuron with a swappable surrogate (snnkit LIF or "
                             "a SpikingJelly node with surrogate_function)")
        yield model
    finally:
        for hook in hooks:
            hook.remove()
        for m, name, original in reversed(swapped):
            setattr(m, name, original)


def pdsg(model: nn.Module):
    """Context manager: attack ``model`` with PDSG (Lun et al., CVPR 2025) in place of its surrogate.

    Example::

        with attacks.pdsg(model):
            x_adv = attacks.pgd(model, x, y, eps=8 / 255, alpha=2 / 255, steps=10)

    See the module docstring for the equation and :func:`snnkit.surrogate.pdsg_sigma` for ``sigma``.
    """
    return swap_surrogate(model, PDSG())
