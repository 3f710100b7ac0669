"""Training recipes: a model's own optimisers, schedulers, callbacks, loss and metrics, as arguments of ``fit``.

A recipe is how a model is meant to be trained (the delay SNN: two optimisers, a per-epoch sigma schedule, position
clamping, its loss). It is data, not a loop: :class:`TrainingRecipe` holds the ``fit`` arguments, and both ways of
training use the same one:

- ``fit(model, data, epochs=E, **delay_recipe(model, E, steps_per_epoch).fit_kwargs())``;
- ``snnkit train --model delay-snn``: :meth:`~snnkit.training.Trainer.from_config` reads the model's
  ``training_recipe`` attribute (a name in :data:`RECIPES`; any model may define one, ``None`` or no attribute:
  no recipe) and builds it with the run's epochs and batches per epoch (:func:`model_recipe`).

A recipe factory is called as ``factory(model, epochs, steps_per_epoch, *, lr=None, weight_decay=None)``;
``lr`` / ``weight_decay`` are the user's explicit settings (``None``: the recipe's own), and it returns a
:class:`TrainingRecipe`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from snnkit.registry import Registry

from .callbacks import Callback

__all__ = ["TrainingRecipe", "RECIPES", "model_recipe"]


@dataclass
class TrainingRecipe:
    """The ``fit`` arguments of a recipe (see :func:`snnkit.training.fit` for each one's meaning).

    Attributes:
        optimizer: a factory ``params -> optimiser or list of optimisers``.
        scheduler: ``"none"``, ``"cosine"``, a factory or one factory (or ``None``) per optimiser.
        scheduler_interval: ``"step"`` or ``"epoch"``.
        callbacks: :class:`~snnkit.training.Callback` objects the recipe needs (schedules, clamps).
        loss: a :data:`~snnkit.training.LOSSES` name or a callable.
        metrics: :data:`~snnkit.training.METRICS` names or :class:`~snnkit.training.Metric` objects.
    """

    optimizer: Callable[[Iterable[nn.Parameter]], Any]
    scheduler: Any = "none"
    scheduler_interval: str = "step"
    callbacks: Sequence[Callback] = field(default_factory=list)
    loss: Any = "rate-ce"
    metrics: Any = ("accuracy",)

    def fit_kwargs(self) -> dict[str, Any]:
        """The recipe as keyword arguments of :func:`~snnkit.training.fit` (add your own callbacks to
        ``callbacks``)."""
        return {
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scheduler_interval": self.scheduler_interval,
            "callbacks": list(self.callbacks),
            "loss": self.loss,
            "metrics": self.metrics,
        }


RecipeFactory = Callable[..., TrainingRecipe]
#: Recipe name -> ``factory(model, epochs, steps_per_epoch, *, lr=None, weight_decay=None) -> TrainingRecipe``.
RECIPES: Registry[RecipeFactory] = Registry("training recipe")


def model_recipe(
    model: nn.Module,
    epochs: int,
    steps_per_epoch: int | None,
    *,
    lr: float | None = None,
    weight_decay: float | None = None,
) -> TrainingRecipe | None:
    """The recipe ``model`` names in its ``training_recipe`` attribute, built for this run; ``None`` when it names
    none.

    Raises:
        ValueError: the name is not in :data:`RECIPES` (the message lists the valid ones).
        TypeError: the factory did not return a :class:`TrainingRecipe`.
    """
    name = getattr(model, "training_recipe", None)
    if name is None:
        return None
    recipe = RECIPES.build(name, model, epochs, steps_per_epoch, lr=lr, weight_decay=weight_decay)
    if not isinstance(recipe, TrainingRecipe):
        raise TypeError(f"training recipe {name!r} returned {type(recipe).__name__}, not a TrainingRecipe")
    return recipe
