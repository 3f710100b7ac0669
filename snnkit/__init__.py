"""snnkit: spiking neural networks for PyTorch.

Time-first tensors ``[T, B, ...]`` throughout. See ``shared/ARCHITECTURE.md`` for the layers.
"""

from . import attacks, encoding, neurons, ops, plasticity, surrogate
from .neurons import reset

__version__ = "0.1.0"

__all__ = ["attacks", "ops", "neurons", "surrogate", "encoding", "plasticity", "reset", "__version__"]
