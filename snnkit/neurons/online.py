"""Run a model one time step per call with neuron state carried and detached: the execution SLTT needs.

SLTT (Meng et al., ICCV 2023, "Towards Memory- and Time-Efficient Backpropagation for Training Spiking Neural
Networks") drops the temporal gradient routes: the potential carried from step t-1 into step t is detached, so the
graph of step t can be freed by a backward right after step t, and training memory no longer grows with T.
:func:`online` switches every snnkit neuron of an unchanged model into that mode for the duration of a ``with``
block: multi-step mode on one-step slices ``x[t:t+1]``, state carried between calls, detached at each call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

from .base import StatefulNeuron

__all__ = ["online", "check_stepwise"]


def check_stepwise(model: nn.Module) -> list[StatefulNeuron]:
    """The snnkit neurons of ``model``, after checking that it can run one time step per call.

    A module that needs the whole sequence at once declares it with a class attribute ``stepwise_unsupported``
    holding the reason (for example a synaptic delay that reads past steps).

    Raises:
        ValueError: ``model`` has no snnkit neuron, or holds a module that cannot run step by step.
    """
    for name, module in model.named_modules():
        reason = getattr(module, "stepwise_unsupported", None)
        if reason:
            raise ValueError(f"module {name or type(model).__name__!r} ({type(module).__name__}) cannot run one time "
                             f"step per call: {reason}")
    neurons = [m for m in model.modules() if isinstance(m, StatefulNeuron)]
    if not neurons:
        raise ValueError(f"{type(model).__name__} has no snnkit neuron (snnkit.neurons.LIF, ...): there is no "
                         "state to carry between time steps")
    return neurons


@contextlib.contextmanager
def online(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, ``model(x[t:t+1])`` advances every neuron by one step from its carried, detached state.

    Neurons start from rest on entry and are back in their own modes, at rest, on exit (also after an error).
    """
    neurons = check_stepwise(model)
    saved = [(n.step_mode, n.carry_state, n.detach_state) for n in neurons]
    try:
        for n in neurons:
            n.reset_state()
            n.step_mode, n.carry_state, n.detach_state = "m", True, True
        yield model
    finally:
        for n, (mode, carry, detach) in zip(neurons, saved):
            n.step_mode, n.carry_state, n.detach_state = mode, carry, detach
            n.reset_state()
