"""Stateful neuron modules (time-first; see ``snnkit.neurons.base`` for the state conventions)."""

from .base import STEP_MODES, StatefulNeuron, reset
from .lif import LIF, ParametricLIF
from .meta import MetaNeuron
from .online import check_stepwise, online
from .presets import SLTT_LIF

__all__ = ["LIF", "ParametricLIF", "MetaNeuron", "StatefulNeuron", "reset", "STEP_MODES", "online", "check_stepwise",
           "SLTT_LIF"]
