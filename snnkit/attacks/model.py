"""What every attack needs from a victim: its spiking neurons, the attack-time module modes, a fresh state per
call, and the time-averaged scores.

Victims are snnkit models (neurons subclass :class:`snnkit.neurons.StatefulNeuron`) or SpikingJelly 2.0 models
(neurons subclass ``spikingjelly.activation_based.neuron.BaseNode``); SpikingJelly is optional and imported only when
installed. A victim takes time-first input ``[T, B, ...]`` and returns per-step logits ``[T, B, K]`` (averaged over
time here, as Lun et al. (CVPR 2025) attack the cross-entropy of the time-averaged output) or already-averaged
logits ``[B, K]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..models.decoding import class_scores
from ..neurons import StatefulNeuron

__all__ = ["spiking_neurons", "require_spiking", "attack_mode", "reset_state", "scores", "sj_base_node"]


def sj_base_node() -> type | None:
    """SpikingJelly's neuron base class, or None when SpikingJelly is not installed."""
    try:
        from spikingjelly.activation_based.neuron import BaseNode
    except Exception:  # not installed, or an incompatible version: no SpikingJelly neurons to find
        return None
    return BaseNode


def spiking_neurons(model: nn.Module) -> list[nn.Module]:
    """The spiking neurons of ``model``: snnkit neurons that emit spikes and SpikingJelly ``BaseNode`` modules."""
    base = sj_base_node()
    found = []
    for m in model.modules():
        if isinstance(m, StatefulNeuron) and m.spiking:
            found.append(m)
        elif base is not None and isinstance(m, base):
            found.append(m)
    return found


def require_spiking(name: str, model) -> nn.Module:
    """``model`` is an ``nn.Module`` with at least one spiking neuron (else TypeError/ValueError naming ``name``)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(model).__name__}")
    if not spiking_neurons(model):
        raise ValueError(
            f"{name} ({type(model).__name__}) has no spiking neurons (snnkit StatefulNeuron or SpikingJelly BaseNode); "
            "these attacks target spiking networks"
        )
    return model


@contextmanager
def attack_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Neurons in train mode, every other module (BatchNorm, Dropout) in eval mode, as Lun et al. attack; the
    previous modes come back on exit (also on an exception)."""
    modes = [(m, m.training) for m in model.modules()]
    neurons = {id(m) for m in spiking_neurons(model)}
    try:
        for m in model.modules():
            m.training = id(m) in neurons  # per module: .train()/.eval() would recurse into the children
        yield model
    finally:
        for m, training in modes:
            m.training = training


def reset_state(model: nn.Module) -> None:
    """Clear every neuron state (snnkit and SpikingJelly) so that each call starts from rest."""
    for m in model.modules():
        if isinstance(m, StatefulNeuron):
            m.reset_state()
        elif type(m).__module__.startswith("spikingjelly") and hasattr(m, "reset") and callable(m.reset):
            m.reset()


def scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class scores ``[B, K]`` of ``model(x)`` from a fresh state: the model's own decoding when it defines
    ``class_scores(out)`` (e.g. the delay SNN's ``sum_t softmax(v_t)``), else the time-averaged logits."""
    reset_state(model)
    return class_scores(model, model(x))
