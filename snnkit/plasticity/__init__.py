"""snnkit.plasticity: local learning rules (STDP traces, astrocyte modulation, Tempotron).

- :class:`STDP` / :func:`stdp_delta`: trace-based pair STDP for the weight ``[out, in]`` of an ``nn.Linear`` from
  time-first spikes (Bi & Poo 1998; Song, Miller & Abbott 2000), with amplitudes that a modulator may set per step
  and a mirrored rule for inhibitory synapses (NALSM, Ivanov & Michmizos 2021).
- :func:`sparse_stdp_step`: the same rule, one step at a time, event-driven on a sparse synapse list
  (:class:`SynapseIndex`) with per-sample weights ``[B, S]`` (NALSM's liquid).
- :class:`Astrocyte`: NALSM's astrocyte, which sets the STDP depression amplitude from liquid minus input activity.
- :class:`Tempotron`: the Tempotron rule for a binary spike-pattern classifier (Guetig & Sompolinsky 2006);
  :class:`TempotronClassifier`: one tempotron per class, read out by the highest peak.
- :class:`CompetitiveSTDPLayer`, :func:`k_winners_take_all`, :class:`Homeostasis`: the competition that unsupervised
  STDP needs to learn distinct features (Diehl & Cook 2015).
"""

from .astrocyte import Astrocyte, astrocyte_step
from .sparse_stdp import SynapseIndex, expand_events, sparse_stdp_step, update_traces
from .competition import CompetitiveSTDPLayer, Homeostasis, k_winners_take_all
from .stdp import PAIRINGS, STDP, TRACE_UPDATES, STDPTraces, stdp_delta, stdp_traces
from .tempotron import Tempotron, psp_kernel, psp_norm, psp_peak_time, tempotron_psp
from .tempotron_classifier import TEMPOTRON_RULES, TempotronClassifier

__all__ = [
    "Astrocyte",
    "SynapseIndex",
    "astrocyte_step",
    "expand_events",
    "sparse_stdp_step",
    "update_traces",
    "PAIRINGS",
    "STDP",
    "TEMPOTRON_RULES",
    "TRACE_UPDATES",
    "CompetitiveSTDPLayer",
    "Homeostasis",
    "STDPTraces",
    "Tempotron",
    "TempotronClassifier",
    "k_winners_take_all",
    "psp_kernel",
    "psp_norm",
    "psp_peak_time",
    "stdp_delta",
    "stdp_traces",
    "tempotron_psp",
]
