"""Stateful neuron modules (time-first; see ``snnkit.neurons.base`` for the state conventions)."""

from .base import STEP_MODES, StatefulNeuron, reset
from .lif import LIF, ParametricLIF

__all__ = ["LIF", "ParametricLIF", "StatefulNeuron", "reset", "STEP_MODES"]
