"""snnkit.layers: nn.Modules that are not neurons.

- :class:`SeqBatchNorm1d`, :class:`SeqBatchNorm2d`: BatchNorm over ``T * B`` for time-first tensors.
- :class:`TimeDistributed`: run a per-step module (conv, pool) on all time steps at once.
- :class:`LeakyIntegrator`: non-spiking leaky-integrator readout; :func:`softmax_sum` decodes its membranes.
- :class:`SpikingTimeMix`, :class:`SpikingChannelMix`, :class:`SpikingRWKVBlock`: SpikeGPT's spiking RWKV layers
  (time-first ``[T, B, C]`` over the token axis; parallel and RNN modes).
- :class:`DelayedLinear`: fully connected layer with one learnable delay per synapse (DCLS).
"""

from .delayed_linear import DelayedLinear
from .norm import SeqBatchNorm1d, SeqBatchNorm2d
from .readout import LeakyIntegrator, softmax_sum
from .rwkv import RWKVState, SpikingChannelMix, SpikingRWKVBlock, SpikingTimeMix, TokenLIF
from .time_distributed import TimeDistributed

__all__ = ["DelayedLinear", "SeqBatchNorm1d", "SeqBatchNorm2d", "TimeDistributed", "LeakyIntegrator", "SpikingTimeMix",
           "SpikingChannelMix", "SpikingRWKVBlock", "RWKVState", "TokenLIF", "softmax_sum"]
