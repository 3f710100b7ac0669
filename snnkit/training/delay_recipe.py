"""The training recipe of learnable-delay networks (Hammouamri, Khalfaoui-Hassani & Masquelier, ICLR 2024), as
``fit`` arguments: no loop of its own.

- Two Adam optimisers over disjoint parameters. Weights (everything but the delay positions): Adam, weight decay
  1e-5, OneCycle up to 5e-3 (``5 x lr``, lr 1e-3; OneCycle starts at ``max / 25``). Positions: Adam lr 0.1
  (``100 x lr``), cosine-annealed to 0. Frozen delays (``DelaySNN(delays="random" | "zero")``): the weights'
  optimiser only.
- :class:`SigmaSchedule`: the Gaussian width of the delay interpolation, per epoch,
  ``sigma_k = max(0.23, sigma_0 (0.23 / sigma_0)^(k / (epochs / 4)))`` with ``sigma_0 = max_delay // 2``: from
  ``sigma_0`` down to 0.23 over the first quarter of training, then constant. This is the schedule of dcls's
  ``SIG``, whose kernel is a Gaussian of width ``|SIG| + 0.27``; the layer's ``sigma`` is that width, so the layer
  gets ``sigma_k + 0.27`` (12.27 down to 0.5 for ``max_delay = 25``), exactly the paper's kernels.
- :class:`ClampDelays`: positions clamped into ``[0, max_delay - 1]`` after every optimiser step.
- Evaluation with integer delays: the loop evaluates in ``model.eval()``, where
  :class:`~snnkit.layers.DelayedLinear` uses ``round(positions)``.
- Loss ``CE(sum_t softmax(v_t), y)`` (:func:`~snnkit.training.losses.softmax_sum_cross_entropy`) and an accuracy
  that predicts the same way (:class:`SoftmaxSumAccuracy`).

Schedules are per optimiser step when the batches per epoch are known (``snnkit train`` always knows them), else per
epoch (the paper's code steps them per epoch; per step gives the same curve, sampled finer, and stays well-formed for
runs of very few epochs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from snnkit.layers import DelayedLinear
from snnkit.layers.delayed_linear import DCLS_SIGMA_OFFSET

from .callbacks import Callback
from .losses import predict_softmax_sum
from .metrics import METRICS, Accuracy
from .recipes import RECIPES, TrainingRecipe

if TYPE_CHECKING:
    from .loop import Trainer

__all__ = [
    "SIGMA_FINAL",
    "sigma_at",
    "SigmaSchedule",
    "ClampDelays",
    "SoftmaxSumAccuracy",
    "delay_layers",
    "delay_recipe",
]

#: The schedule's last Gaussian width (in steps), where the interpolation is nearly an integer delay.
SIGMA_FINAL = 0.23


def sigma_at(epoch: int, epochs: int, initial: float, final: float = SIGMA_FINAL, fraction: float = 0.25) -> float:
    """The Gaussian width during epoch ``epoch`` (0-based) of ``epochs``:
    ``max(final, initial (final / initial)^(epoch / (fraction epochs)))``.

    Geometric decay: each epoch multiplies sigma by ``(final / initial)^(1 / (fraction epochs))`` until it reaches
    ``final`` after ``fraction`` of the epochs (Hammouamri et al. 2024: ``initial = max_delay // 2``, ``final =
    0.23``, ``fraction = 1/4``; their code rounds ``epochs / 4`` down). Computed in closed form from the epoch, so a
    resumed run sets exactly the value an uninterrupted one has. ``initial <= final`` stays at ``initial``.
    """
    if initial <= final:
        return float(initial)
    span = fraction * epochs
    if span <= 0:
        return float(final)
    return max(final, initial * (final / initial) ** (epoch / span))


def delay_layers(model: nn.Module, *, learned_only: bool = False) -> list[DelayedLinear]:
    """The :class:`~snnkit.layers.DelayedLinear` modules of ``model`` (with ``learned_only``: those whose
    positions are trained)."""
    layers = [m for m in model.modules() if isinstance(m, DelayedLinear)]
    if learned_only:
        layers = [m for m in layers if m.positions.requires_grad]
    return layers


class SigmaSchedule(Callback):
    """Sets the Gaussian width of every learned delay layer at the start of each epoch (:func:`sigma_at`).

    The layer's width is ``offset + sigma_at(epoch, ...)``. Frozen delays (``learn_delays=False``) are left alone:
    they are integers. The value depends only on the epoch and ``trainer.epochs``, so a resumed run (also one
    resumed mid-epoch: :meth:`on_train_start`) trains with the same sigma as an uninterrupted one. The epoch's width
    is added to its ``metrics.jsonl`` record as ``sigma``.

    Args:
        initial: the first epoch's scheduled value; ``None``: each layer's ``max_delay // 2`` (the paper).
        final: the last scheduled value (0.23).
        fraction: share of the epochs over which it decays (1/4).
        offset: added to the scheduled value to give the layer's Gaussian width (0.27: dcls's kernel adds it to
            its ``SIG``, the quantity the paper schedules; 0: the layer's width follows the schedule itself).
    """

    def __init__(self, initial: float | None = None, final: float = SIGMA_FINAL, fraction: float = 0.25,
                 offset: float = DCLS_SIGMA_OFFSET) -> None:
        if initial is not None and not (isinstance(initial, (int, float)) and math.isfinite(initial) and initial > 0):
            raise ValueError(f"SigmaSchedule: initial must be a finite number > 0 or None, got {initial!r}")
        if not (isinstance(final, (int, float)) and math.isfinite(final) and final > 0):
            raise ValueError(f"SigmaSchedule: final must be a finite number > 0, got {final!r}")
        if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
            raise ValueError(f"SigmaSchedule: fraction must be in (0, 1], got {fraction!r}")
        if not (isinstance(offset, (int, float)) and math.isfinite(offset) and offset >= 0):
            raise ValueError(f"SigmaSchedule: offset must be a finite number >= 0, got {offset!r}")
        self.initial, self.final, self.fraction, self.offset = initial, float(final), float(fraction), float(offset)

    def sigma(self, layer: DelayedLinear, epoch: int, epochs: int) -> float:
        """``layer``'s Gaussian width during ``epoch`` of ``epochs``."""
        initial = self.initial if self.initial is not None else max(layer.max_delay // 2, self.final)
        return self.offset + sigma_at(epoch, epochs, initial, self.final, self.fraction)

    def apply(self, model: nn.Module, epoch: int, epochs: int) -> None:
        """Set every learned delay layer of ``model`` to its sigma of ``epoch``."""
        for layer in delay_layers(model, learned_only=True):
            layer.set_sigma(self.sigma(layer, epoch, epochs))

    def on_train_start(self, trainer: Trainer) -> None:
        self.apply(trainer.model, trainer.epoch, trainer.epochs)

    def on_epoch_start(self, trainer: Trainer) -> None:
        self.apply(trainer.model, trainer.epoch, trainer.epochs)

    def on_epoch_end(self, trainer: Trainer) -> None:
        layers = delay_layers(trainer.model, learned_only=True)
        if layers and trainer.history:
            trainer.history[-1]["sigma"] = float(layers[-1].sigma)


class ClampDelays(Callback):
    """Clamps every delay layer's positions into ``[0, max_delay - 1]`` after each optimiser step (a position
    outside would ask for a delay the layer cannot represent)."""

    def on_batch_end(self, trainer: Trainer) -> None:
        for layer in delay_layers(trainer.model, learned_only=True):
            layer.clamp_delays()


@METRICS.register("softmax-sum-accuracy")
class SoftmaxSumAccuracy(Accuracy):
    """Accuracy of ``argmax_k sum_t softmax(v_t)_k``, the prediction of the softmax-sum loss. Recorded under the
    same name and key as :class:`~snnkit.training.Accuracy` (``train_acc``, ``test_acc``, ``test_accuracy``)."""

    def batch(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        correct = (predict_softmax_sum(logits) == target).sum().to(torch.float64)
        return torch.stack([correct, correct.new_full((), target.numel())])


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"delay_recipe: {name} must be a finite number > 0, got {value!r}")
    return float(value)


def delay_recipe(
    model: nn.Module,
    epochs: int,
    steps_per_epoch: int | None = None,
    *,
    lr: float | None = None,
    weight_decay: float | None = None,
    max_lr_factor: float = 5.0,
    position_lr_factor: float = 100.0,
) -> TrainingRecipe:
    """The delay-learning recipe of Hammouamri et al. (ICLR 2024) for ``model`` as :func:`~snnkit.training.fit`
    arguments::

        recipe = delay_recipe(model, epochs=20, steps_per_epoch=len(train_loader))
        fit(model, train_loader, test_data=test_loader, epochs=20, **recipe.fit_kwargs())

    Args:
        model: a network with :class:`~snnkit.layers.DelayedLinear` layers (e.g. :class:`~snnkit.models.DelaySNN`).
        epochs: the run's epochs (the length of every schedule; pass the same to ``fit``).
        steps_per_epoch: batches per epoch: schedules step after every batch; ``None``: after every epoch.
        lr: the weights' Adam learning rate (default 1e-3); OneCycle peaks at ``max_lr_factor x lr`` (5e-3) and
            the positions' rate is ``position_lr_factor x lr`` (0.1), the paper's ratios.
        weight_decay: the weights' Adam weight decay (default 1e-5); positions have none.

    Raises:
        ValueError: ``model`` has no delay layer, or an argument out of range (named).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"delay_recipe: epochs must be a positive integer, got {epochs!r}")
    if steps_per_epoch is not None and (
        isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch < 1
    ):
        raise ValueError(f"delay_recipe: steps_per_epoch must be a positive integer or None, got {steps_per_epoch!r}")
    lr = _check_positive("lr", 1e-3 if lr is None else lr)
    weight_decay = 1e-5 if weight_decay is None else weight_decay
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0 \
            or not math.isfinite(weight_decay):
        raise ValueError(f"delay_recipe: weight_decay must be a finite number >= 0, got {weight_decay!r}")
    max_lr = lr * _check_positive("max_lr_factor", max_lr_factor)
    position_lr = lr * _check_positive("position_lr_factor", position_lr_factor)
    layers = delay_layers(model)
    if not layers:
        raise ValueError(f"delay_recipe: {type(model).__name__} has no DelayedLinear layer (nothing to schedule)")

    position_ids = {id(m.positions) for m in layers if m.positions.requires_grad}
    total = epochs * steps_per_epoch if steps_per_epoch is not None else epochs

    def optimizers(_params: Iterable[nn.Parameter]) -> list[torch.optim.Optimizer]:
        weights = [p for p in model.parameters() if p.requires_grad and id(p) not in position_ids]
        positions = [p for p in model.parameters() if id(p) in position_ids]
        opts: list[torch.optim.Optimizer] = [torch.optim.Adam(weights, lr=lr, weight_decay=weight_decay)]
        if positions:
            opts.append(torch.optim.Adam(positions, lr=position_lr))
        return opts

    def one_cycle(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total)

    def cosine(opt: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)

    return TrainingRecipe(
        optimizer=optimizers,
        scheduler=[one_cycle, cosine] if position_ids else [one_cycle],
        scheduler_interval="step" if steps_per_epoch is not None else "epoch",
        callbacks=[SigmaSchedule(), ClampDelays()],
        loss="softmax-sum-ce",
        metrics=[SoftmaxSumAccuracy()],
    )


@RECIPES.register("delay")
def _delay(model: nn.Module, epochs: int, steps_per_epoch: int | None, *, lr: float | None = None,
           weight_decay: float | None = None) -> TrainingRecipe:
    return delay_recipe(model, epochs, steps_per_epoch, lr=lr, weight_decay=weight_decay)
