"""snnkit.training: train any snnkit model, resumably, on one process or many (DDP).

Entry points:
- :func:`train` (new run from a :class:`TrainConfig`), :func:`resume` (continue a run directory exactly).
- :class:`Trainer`: the loop itself; :mod:`~snnkit.training.methods` the pluggable per-batch step (BPTT).

A run directory ``runs/<run>/`` holds ``config.json``, ``checkpoint.pt`` (atomic, checksummed, refreshed every
epoch and every ``ckpt_every`` batches), ``metrics.jsonl`` (one record per epoch), ``curves.png`` and ``raster.png``.
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import DATASETS, TrainConfig
from .datasets import DataBundle, build_datasets
from .loop import Trainer, TrainResult, resume, train
from .losses import predict, rate_cross_entropy
from .methods import BPTT, METHODS, StepContext, StepOutput, TrainingMethod, get_method
from .metrics import SpikeCounter, read_jsonl
from .sampler import ResumableSampler

__all__ = [
    "train",
    "resume",
    "Trainer",
    "TrainConfig",
    "TrainResult",
    "DataBundle",
    "DATASETS",
    "build_datasets",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "TrainingMethod",
    "BPTT",
    "METHODS",
    "get_method",
    "StepContext",
    "StepOutput",
    "rate_cross_entropy",
    "predict",
    "SpikeCounter",
    "read_jsonl",
    "ResumableSampler",
]
