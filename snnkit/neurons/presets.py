"""Neuron configurations of published methods, as keyword arguments of :class:`snnkit.neurons.LIF`."""

from __future__ import annotations

from types import MappingProxyType

from ..surrogate import Triangle

__all__ = ["SLTT_LIF"]

#: The LIF of SLTT (Meng et al., ICCV 2023; ``modules/neuron.py`` of qymeng94/SLTT): ``tau = 1.1`` with the input not
#: decayed, ``h_t = v_{t-1} (1 - 1/tau) + x_t``, soft reset (``v_reset=None``), threshold 1 and the triangle surrogate
#: ``max(0, 1 - |u|)``. Use as ``LIF(**SLTT_LIF)``. SpikingJelly's ``SLTTLIFNode`` is not this neuron: it defaults to
#: tau 2, decays the input, resets hard to 0 and uses the sigmoid surrogate.
SLTT_LIF = MappingProxyType(
    {"tau": 1.1, "decay_input": False, "v_reset": None, "v_threshold": 1.0, "surrogate": Triangle(alpha=1.0)}
)
