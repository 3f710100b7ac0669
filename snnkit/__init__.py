"""snnkit: spiking neural networks for PyTorch.

Time-first tensors ``[T, B, ...]`` throughout. See ``shared/ARCHITECTURE.md`` for the layers.
"""

from . import neurons, ops, surrogate
from .neurons import reset

__version__ = "0.1.0"

__all__ = ["ops", "neurons", "surrogate", "reset", "__version__"]
