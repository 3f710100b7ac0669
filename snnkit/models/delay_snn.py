"""The delay SNN of Hammouamri, Khalfaoui-Hassani & Masquelier (ICLR 2024, "Learning Delays in Spiking Neural
Networks using Dilated Convolutions with Learnable Spacings"): fully connected spiking layers whose synapses each
have a weight and a learnable delay (:class:`snnkit.layers.DelayedLinear`).

Block, repeated per hidden layer::

    DelayedLinear -> SeqBatchNorm1d -> LIF (decay_input=False, hard reset to 0, v_th 1, ATan(5), detach_reset) -> Dropout

Readout: ``DelayedLinear`` into a non-spiking LIF membrane (:class:`snnkit.layers.LeakyIntegrator`, the LIF op's
``v_threshold=None`` mode); the output is that membrane ``v_t`` at every step, ``[T', B, K]``. The paper's loss is
the cross-entropy of ``sum_t softmax(v_t)`` (:func:`snnkit.training.losses.softmax_sum_cross_entropy`); the
training recipe (two optimisers, sigma schedule, clamping) is :func:`snnkit.training.delay_recipe`, which
``snnkit train --model delay-snn`` applies by itself (this model names it in :attr:`DelaySNN.training_recipe`).

Tail. A spike near the end of a sample reaches the next layer up to ``max_delay - 1`` steps later. As in the paper,
each delay layer's input gets ``tail`` zero steps appended (default ``(max_delay - 1) // 2``, the paper's right
padding), and :class:`~snnkit.layers.DelayedLinear` keeps its input's length, so a layer computes exactly the
paper's padded convolution: outputs up to ``tail`` steps past its input, contributions arriving later are dropped.
The model's output is therefore ``T' = T + (len(hidden) + 1) * tail`` steps long (SHD: ``T + 36``). ``tail=0``
keeps ``T' = T`` (late spikes are dropped at every layer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnkit.layers import DelayedLinear, LeakyIntegrator, SeqBatchNorm1d, softmax_sum
from snnkit.neurons import LIF
from snnkit.surrogate import ATan
from snnkit.validation import check_positive_int, check_real, check_tau

from .registry import register

__all__ = ["DelaySNN", "DELAY_MODES", "DATASET_CONFIGS", "PAPER_RUNS"]

#: ``delays=`` options: learned (the paper's method), fixed at random values, or fixed at zero (its two baselines).
DELAY_MODES = ("learned", "random", "zero")

#: The paper's settings per dataset (10 ms bins, 700 cochlea channels pooled by 5 -> 140 inputs). ``tau`` is the LIF
#: time constant in steps: 10.05 ms (SHD) and 15 ms (SSC) over 10 ms bins. Spoken digits (snnkit's bundled set, SHD's
#: format, 1020 training samples of up to ~94 bins) gets a smaller network: one 128-wide layer and SHD's delays, so a
#: run takes minutes on one CPU core.
DATASET_CONFIGS: dict[str, dict[str, Any]] = {
    "shd": {"in_features": 140, "num_classes": 20, "hidden": (256, 256), "max_delay": 25, "dropout": 0.4,
            "tau": 1.005},
    "ssc": {"in_features": 140, "num_classes": 35, "hidden": (512, 512, 512), "max_delay": 31, "dropout": 0.25,
            "tau": 1.5},
    "spoken-digits": {"in_features": 140, "num_classes": 20, "hidden": (128,), "max_delay": 25, "dropout": 0.1,
                      "tau": 1.005},
}


class DelaySNN(nn.Module):
    """Spiking network with one learnable delay per synapse (Hammouamri et al. ICLR 2024).

    Each delay layer computes ``out[t, j] = sum_i w_ji x[t - d_ji, i]`` with ``d_ji`` in ``[0, max_delay - 1]``
    (learned as a continuous position with Gaussian interpolation in training, rounded at evaluation). Each hidden
    LIF neuron integrates ``v_t = v_{t-1} - v_{t-1} / tau + x_t`` (``decay_input=False``), fires at ``v_t >= 1`` and
    resets to 0. The readout integrates ``v_t = v_{t-1} + (x_t - v_{t-1}) / tau`` without firing.

    Args:
        in_features: input channels per step (140: SHD/SSC pooled by 5).
        num_classes: output neurons.
        hidden: width of each hidden layer; its length is the number of hidden layers (paper: SHD 2 x 256).
        max_delay: delays range over ``[0, max_delay - 1]`` steps (paper: SHD 25, SSC 31 bins of 10 ms).
        dropout: dropout after each hidden LIF (paper: SHD 0.4, SSC 0.25).
        tau: LIF time constant in steps, > 1, for hidden and readout neurons (paper: 10.05 ms / 10 ms = 1.005).
        v_threshold: hidden LIF threshold (paper: 1).
        delays: ``"learned"`` (the paper), ``"random"`` (uniform random integer delays, frozen) or ``"zero"`` (no
            delays, frozen): the paper's comparison. Frozen delays are integers in training too (as the paper's
            ``snn_delays_lr0`` and ``snn`` baselines); only learned delays follow the sigma schedule.
        sigma: initial Gaussian width of the delay interpolation (default ``max_delay // 2``, the schedule's start).
        tail: zero steps appended to each delay layer's input (default ``(max_delay - 1) // 2``, the paper's right
            padding); see the module docstring.
        training_recipe: name of the training recipe ``snnkit train`` applies (:data:`snnkit.training.RECIPES`);
            ``None`` trains with the plain settings (``--lr``, ``--weight-decay``, ``--scheduler``, rate-ce loss).

    Input ``[T, B, in_features]`` (trailing dims are flattened); output ``[T', B, num_classes]`` membrane
    potentials, ``T' = T + (len(hidden) + 1) * tail``.

    Raises:
        ValueError: an argument out of range (named in the message); wrong input rank, size or an empty sequence.
    """

    training_recipe: str | None = "delay"
    #: Per-step training methods (SLTT) would feed one step per call: a delay reads past steps and the tail appends
    #: steps, so the model refuses them (:func:`snnkit.neurons.online`).
    stepwise_unsupported = "its delay layers read up to max_delay - 1 past steps and each appends a tail; use BPTT"

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256, 256),
        *,
        max_delay: int = 25,
        dropout: float = 0.4,
        tau: float = 1.005,
        v_threshold: float = 1.0,
        delays: str = "learned",
        sigma: float | None = None,
        tail: int | None = None,
        training_recipe: str | None = "delay",
    ) -> None:
        super().__init__()
        self.in_features = check_positive_int("DelaySNN: in_features", in_features)
        num_classes = check_positive_int("DelaySNN: num_classes", num_classes)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden:
            raise ValueError(f"DelaySNN: hidden must be a non-empty list of layer widths, got {hidden!r}")
        widths = [check_positive_int("DelaySNN: hidden width", h) for h in hidden]
        self.max_delay = check_positive_int("DelaySNN: max_delay", max_delay)
        dropout = check_real("DelaySNN: dropout", dropout)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DelaySNN: dropout must be in [0, 1), got {dropout}")
        tau = check_tau("DelaySNN: tau", tau)
        v_threshold = check_real("DelaySNN: v_threshold", v_threshold)
        if delays not in DELAY_MODES:
            raise ValueError(f"DelaySNN: delays must be one of {', '.join(DELAY_MODES)}, got {delays!r}")
        if sigma is not None:
            sigma = check_real("DelaySNN: sigma", sigma)
            if not sigma > 0:
                raise ValueError(f"DelaySNN: sigma must be > 0, got {sigma}")
        if tail is None:
            tail = (self.max_delay - 1) // 2
        if isinstance(tail, bool) or not isinstance(tail, int) or tail < 0:
            raise ValueError(f"DelaySNN: tail must be an integer >= 0 (zero steps appended per layer), got {tail!r}")
        if training_recipe is not None and not isinstance(training_recipe, str):
            raise ValueError(f"DelaySNN: training_recipe must be a recipe name or None, got {training_recipe!r}")
        self.tail = tail
        self.delay_mode = delays
        self.training_recipe = training_recipe
        self.num_hidden = len(widths)

        surrogate = ATan(alpha=5.0)
        blocks: list[nn.Module] = []
        width = self.in_features
        for h in widths:
            blocks.append(
                nn.ModuleDict(
                    {
                        # No bias: the BatchNorm right after has its own shift (as the paper, bias=False).
                        "delay": self._delay_layer(width, h, sigma),
                        "norm": SeqBatchNorm1d(h),
                        "lif": LIF(tau=tau, v_threshold=v_threshold, v_reset=0.0, decay_input=False,
                                   detach_reset=True, surrogate=surrogate, step_mode="m"),
                        "dropout": nn.Dropout(dropout),
                    }
                )
            )
            width = h
        self.blocks = nn.ModuleList(blocks)
        self.readout_delay = self._delay_layer(width, num_classes, sigma)
        self.readout = LeakyIntegrator(tau)

    def _delay_layer(self, n_in: int, n_out: int, sigma: float | None) -> DelayedLinear:
        # Frozen delays (learn_delays=False) are rounded by the layer at construction: integers in training as in
        # evaluation, as the paper's baselines.
        return DelayedLinear(
            n_in, n_out, self.max_delay, bias=False, sigma=sigma,
            init_delays="zero" if self.delay_mode == "zero" else "uniform", learn_delays=self.delay_mode == "learned",
        )

    def delay_layers(self) -> list[DelayedLinear]:
        """The delay layers, input side first (the readout's last)."""
        return [b["delay"] for b in self.blocks] + [self.readout_delay]

    def _delayed(self, layer: DelayedLinear, x: torch.Tensor) -> torch.Tensor:
        if self.tail:
            x = F.pad(x, (0, 0, 0, 0, 0, self.tail))  # zero steps at the end of the time axis
        return layer(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"DelaySNN expects time-first x [T, B, C]; got shape {shape}")
        x = x.flatten(2)
        if x.shape[0] == 0:
            raise ValueError("DelaySNN: x has T = 0 time steps")
        if x.shape[-1] != self.in_features:
            raise ValueError(f"DelaySNN built for {self.in_features} input features, got {x.shape[-1]}")
        for block in self.blocks:
            x = block["dropout"](block["lif"](block["norm"](self._delayed(block["delay"], x))))
        return self.readout(self._delayed(self.readout_delay, x))

    def class_scores(self, out: torch.Tensor) -> torch.Tensor:
        """The class scores ``[B, K]`` the readout membranes ``out [T', B, K]`` decode to: ``sum_t softmax(v_t)``
        (the paper's decoding; its argmax is the prediction, its cross-entropy the loss). Consumers that score
        any model (the attacks, the training loop's raster title) use this instead of the time-mean of logits."""
        return softmax_sum(out)

    @classmethod
    def for_dataset(cls, dataset: str, **overrides: Any) -> DelaySNN:
        """The paper's network for ``"shd"`` (2 x 256, max delay 25, dropout 0.4, tau 1.005), ``"ssc"`` (3 x 512,
        max delay 31, dropout 0.25, tau 1.5) or snnkit's bundled ``"spoken-digits"`` (1 x 128, max delay 25, dropout
        0.1); ``overrides`` replace any constructor argument (e.g. ``delays="zero"``).

        Raises:
            ValueError: unknown dataset (the message lists the known ones) or an invalid override.
        """
        if dataset not in DATASET_CONFIGS:
            raise ValueError(f"DelaySNN.for_dataset: unknown dataset {dataset!r}; known: {', '.join(DATASET_CONFIGS)}")
        kwargs = {**DATASET_CONFIGS[dataset], **overrides}
        return cls(**kwargs)

    def extra_repr(self) -> str:
        return f"delays={self.delay_mode!r}, max_delay={self.max_delay}, tail={self.tail}"


def _dataset_defaults(in_features: int, num_classes: int, dataset: str | None) -> Mapping[str, Any]:
    # Without a dataset name the paper's configuration whose input and class counts match the data is taken (SSC for
    # 140 x 35, SHD for 140 x 20, which also fits the bundled spoken digits); other shapes get the class defaults.
    if dataset is None:
        matches = [n for n in ("shd", "ssc") if DATASET_CONFIGS[n]["in_features"] == in_features
                   and DATASET_CONFIGS[n]["num_classes"] == num_classes]
        if not matches:
            return {}
        dataset = matches[0]
    if dataset not in DATASET_CONFIGS:
        raise ValueError(f"delay-snn: unknown dataset {dataset!r}; known: {', '.join(DATASET_CONFIGS)}")
    return {k: v for k, v in DATASET_CONFIGS[dataset].items() if k not in ("in_features", "num_classes")}


#: The paper's runs (Thvnvtos/SNN-delays' configurations): 150 epochs of batches of 256 on SHD, 60 of 128 on SSC.
PAPER_RUNS: dict[str, dict[str, int]] = {
    "shd": {"epochs": 150, "batch_size": 256},
    "ssc": {"epochs": 60, "batch_size": 128},
}


def _run_defaults(dataset: str) -> dict[str, Any]:
    """``snnkit train --model delay-snn`` on a dataset with a configuration: that configuration's network and, for
    SHD and SSC, the paper's epochs and batch size (each applies only where the user typed nothing else)."""
    if dataset not in DATASET_CONFIGS:
        return {}
    return {"model_kwargs": {"dataset": dataset}, **PAPER_RUNS.get(dataset, {})}


@register("delay-snn", run_defaults=_run_defaults)
def _build_delay_snn(in_shape: tuple[int, ...], num_classes: int, *, dataset: str | None = None,
                     **kw: Any) -> DelaySNN:
    """``delay-snn``: :class:`DelaySNN` sized by the data, with the paper's configuration of ``dataset`` (``"shd"``,
    ``"ssc"`` or ``"spoken-digits"``, as :meth:`DelaySNN.for_dataset`; default: the SHD or SSC configuration when
    the data has its input and class counts). Any other keyword (``--model-arg``) overrides the configuration."""
    if isinstance(kw.get("hidden"), int):
        kw["hidden"] = (kw["hidden"],)
    in_features = prod(in_shape)
    return DelaySNN(in_features, num_classes, **{**_dataset_defaults(in_features, num_classes, dataset), **kw})
