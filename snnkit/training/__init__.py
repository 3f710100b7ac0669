"""snnkit.training: one loop that trains any snnkit model, resumably, on one process or many (DDP).

Entry points:
- :func:`fit`: train a model instance on a Dataset, DataLoader or any iterable of ``(x [T, B, ...], y)`` batches,
  with pluggable optimisers (parameter groups, several optimisers, each with its own scheduler), training
  method (:data:`METHODS`: BPTT, SLTT, SLTT-K, ...), loss (:data:`LOSSES`), metrics (:data:`METRICS`) and :class:`Callback` hooks.
- Training recipes (:data:`RECIPES`, :class:`TrainingRecipe`): a model's own ``fit`` arguments, e.g.
  :func:`delay_recipe` for learnable delays (two optimisers, sigma schedule, position clamping), which
  ``snnkit train`` applies to models naming one in their ``training_recipe`` attribute.
- :func:`train` (a new run of a registered model from a :class:`TrainConfig`, what ``snnkit train`` calls) and
  :func:`resume` (continue such a run directory exactly): thin users of the same :class:`Trainer`.

Example::

    from snnkit.training import fit
    result = fit(model, train_loader, test_data=test_loader, epochs=20,
                 optimizer=lambda params: torch.optim.Adam(params, 1e-3), run_dir="runs/mine")
    result.history, result.test_accuracy
    fit(model, train_loader, test_data=test_loader, epochs=20, optimizer=..., run_dir="runs/mine", resume=True)

A run directory holds ``checkpoint.pt`` (atomic, checksummed, refreshed every epoch and every ``ckpt_every``
batches), ``metrics.jsonl`` (one record per epoch), ``curves.png`` and ``raster.png``; runs of :func:`train` also
``config.json``. ``run_dir=None`` writes nothing.
"""

from .augment import FrameAugment
from .batches import EvalBatches, TrainBatches
from .callbacks import Callback
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import DATASETS, TrainConfig
from .datasets import DataBundle, build_datasets
from .delay_recipe import ClampDelays, SigmaSchedule, SoftmaxSumAccuracy, delay_recipe, sigma_at
from .lm import BitsPerToken, LMConfig, lm_cross_entropy, resume_lm, train_lm
from .loop import Trainer, TrainResult, fit
from .losses import LOSSES, get_loss, predict, predict_softmax_sum, rate_cross_entropy, softmax_sum_cross_entropy
from .methods import BPTT, METHODS, StepContext, StepOutput, TrainingMethod, get_method
from .metrics import METRICS, Accuracy, EpochSums, Metric, SpikeCounter, get_metrics, read_jsonl
from .recipes import RECIPES, TrainingRecipe, model_recipe
from .runs import create_run_dir, resume, train
from .sampler import ResumableSampler
from .sltt import SLTT, SLTTK

__all__ = [
    "fit",
    "train",
    "resume",
    "Trainer",
    "TrainResult",
    "TrainConfig",
    "DataBundle",
    "DATASETS",
    "build_datasets",
    "create_run_dir",
    "Callback",
    "FrameAugment",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "TrainingMethod",
    "BPTT",
    "SLTT",
    "SLTTK",
    "METHODS",
    "get_method",
    "StepContext",
    "StepOutput",
    "LOSSES",
    "get_loss",
    "rate_cross_entropy",
    "predict",
    "softmax_sum_cross_entropy",
    "predict_softmax_sum",
    "TrainingRecipe",
    "RECIPES",
    "model_recipe",
    "delay_recipe",
    "SigmaSchedule",
    "ClampDelays",
    "SoftmaxSumAccuracy",
    "sigma_at",
    "METRICS",
    "Metric",
    "Accuracy",
    "get_metrics",
    "EpochSums",
    "SpikeCounter",
    "read_jsonl",
    "ResumableSampler",
    "TrainBatches",
    "EvalBatches",
    "LMConfig",
    "train_lm",
    "resume_lm",
    "lm_cross_entropy",
    "BitsPerToken",
]
