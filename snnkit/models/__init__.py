"""snnkit.models: whole networks, built by name.

``build(name, in_shape, num_classes, **kw)`` with ``in_shape`` one time step of one sample (no T, no B).
All models take time-first input ``[T, B, *in_shape]`` and return per-step logits ``[T, B, num_classes]``; the
training loss and the prediction average them over time (rate decoding), which keeps per-step outputs available for
per-step methods (SLTT) and for analysis.

Registered names (see :func:`available`):
- ``"mlp"``: :class:`SpikingMLP` for spike trains ``[T, B, C]`` (SHD, SSC, spoken digits).
- ``"vgg"``: :class:`SpikingVGG` for DVS frames ``[T, B, 2, H, W]`` (CIFAR10-DVS).
- ``"delay-snn"``: :class:`DelaySNN`, learnable synaptic delays (Hammouamri et al. ICLR 2024) for spike trains
  ``[T, B, C]``; returns readout membranes ``[T', B, K]`` and trains with its recipe
  (:func:`snnkit.training.delay_recipe`).

Not in the registry (it is not trained by backprop and returns spike counts, not logits):
:class:`LiquidStateMachine`, the liquid state machine with astrocyte-modulated STDP (NALSM; Ivanov & Michmizos 2021),
and its linear :class:`Readout`; :class:`SpikeGPT`, the spiking RWKV language model (token ids ``[B, T]`` -> logits
``[B, T, vocab]``, trained with ``snnkit train-lm``) and its sampler :func:`generate`.
"""

from .delay_snn import DelaySNN
from .lsm import LiquidStateMachine, Readout, branching_factor, normalise_rates
from .mlp import SpikingMLP
from .decoding import class_scores
from .registry import MODELS, available, build, register, run_defaults
from .spikegpt import SpikeGPT, generate
from .vgg import DEFAULT_CFG, SpikingVGG

__all__ = ["MODELS", "build", "available", "register", "run_defaults", "class_scores", "SpikingMLP", "SpikingVGG", "DEFAULT_CFG", "DelaySNN",
           "LiquidStateMachine", "Readout", "branching_factor", "normalise_rates", "SpikeGPT", "generate"]
