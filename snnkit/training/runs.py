"""Runs described by a :class:`~snnkit.training.TrainConfig` (what ``snnkit train`` starts): :func:`train` builds
the registered model and datasets the config names and trains them with the :class:`~snnkit.training.Trainer`
behind :func:`~snnkit.training.fit`; :func:`resume` rebuilds them from a checkpoint and continues.

Each new run gets a directory of its own under ``cfg.out``, created exclusively (``os.mkdir``; a name already taken
gets ``-1``, ``-2``, ... appended, an existing directory is never reused) and only after every argument has been
checked, with ``config.json`` written atomically inside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Union

from tqdm.auto import tqdm

from snnkit import models
from snnkit.atomic import atomic_write_text

from . import distributed as D
from .callbacks import Callback
from .checkpoint import CHECKPOINT_NAME, load_checkpoint
from .config import RESUME_OVERRIDABLE, TrainConfig
from .datasets import DataBundle, build_datasets
from .loop import METRICS_NAME, Trainer, TrainResult

__all__ = ["train", "resume", "create_run_dir"]

CallbackArg = Iterable[Union[Callback, Callable[[Trainer], Any]]]


def create_run_dir(out: str | os.PathLike, name: str, *, unique: bool) -> Path:
    """Create the directory ``out/name`` exclusively (atomic ``os.mkdir``; ``out`` is created if needed).

    With ``unique``, a taken name becomes ``name-1``, ``name-2``, ... until a new directory is made, so two runs
    started at the same moment never share one. Without, a taken name raises.

    Raises:
        FileExistsError: ``out/name`` exists and not ``unique``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    k = 0
    while True:
        path = out / (name if k == 0 else f"{name}-{k}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            if not unique:
                raise
            k += 1


def _holds_run(path: Path) -> bool:
    return (path / CHECKPOINT_NAME).exists() or (path / METRICS_NAME).exists()


def _new_run_dir(cfg: TrainConfig, info: D.DistInfo) -> Path:
    # Rank 0 creates the directory (its name holds a timestamp) and tells the others; an error travels the same way
    # so that no rank is left waiting in a collective.
    answer: tuple[str | None, str | None] = (None, None)
    if info.is_main:
        out = Path(cfg.out)
        try:
            if cfg.name:
                path = create_run_dir(out, cfg.name, unique=False)
            else:
                base = f"{cfg.dataset}-{cfg.resolved_model()}-s{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}"
                path = create_run_dir(out, base, unique=True)
            atomic_write_text(path / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
            answer = (str(path), None)
        except FileExistsError:
            taken = out / str(cfg.name)
            if _holds_run(taken):
                error = f"run directory {taken} already holds a run; resume it with --resume or pick another --name"
            else:
                error = f"run directory {taken} already exists; pick another --name or remove it"
            answer = (None, error)
    path_str, error = D.broadcast_object(answer, info)
    if error:
        raise FileExistsError(error)
    return Path(path_str)


def train(
    cfg: TrainConfig,
    *,
    data: DataBundle | None = None,
    callbacks: CallbackArg = (),
    progress: bool = True,
) -> TrainResult:
    """Start a new run as described by ``cfg`` (under DDP when launched by torchrun).

    Args:
        cfg: the configuration (its ``dataset`` is opened through :mod:`snnkit.data` unless ``data`` is given).
        data: use these datasets instead (tests, custom data); ``cfg.dataset`` is then only a label.
        callbacks: :class:`~snnkit.training.Callback` objects, or callables run after every batch with the
            :class:`Trainer`.
        progress: tqdm bars on rank 0.

    Raises:
        ValueError: unknown model, dataset or method name, or another invalid setting (before anything is written).
        FileExistsError: ``cfg.name`` names a directory that already exists.
        snnkit.data.DatasetNotFoundError: the dataset files are missing (a FileNotFoundError).
    """
    models.MODELS.get(cfg.resolved_model())  # an unknown name fails before anything is set up or read
    info = D.setup(cfg.device)
    try:
        D.resolve_device(cfg.device, info)  # fail on a bad device before the data is opened
        bundle = data if data is not None else build_datasets(cfg)
        trainer = Trainer.from_config(cfg, bundle, info=info, callbacks=callbacks, progress=progress)
        trainer.run_dir = _new_run_dir(cfg, info)  # only now, with every argument checked
        return trainer.fit()
    finally:
        D.teardown(info)


def resume(
    run_dir: str | os.PathLike,
    *,
    data: DataBundle | None = None,
    overrides: dict[str, Any] | None = None,
    callbacks: CallbackArg = (),
    progress: bool = True,
) -> TrainResult:
    """Continue the run in ``run_dir`` (started by :func:`train`) from its checkpoint, exactly where it stopped.

    The configuration comes from the checkpoint. ``overrides`` may change only settings that do not affect the
    result (``RESUME_OVERRIDABLE`` in :mod:`snnkit.training.config`: device, workers, data root, download, frame
    store). A run started by :func:`~snnkit.training.fit` is continued by ``fit(..., run_dir=run_dir, resume=True)``
    with the same model and data.

    Raises:
        FileNotFoundError: ``run_dir`` has no checkpoint.
        ValueError: the checkpoint holds no configuration (a ``fit`` run), or ``overrides`` names other settings.
        CheckpointError: the checkpoint is truncated, corrupt, foreign or from another model.
    """
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: {run_dir} has no checkpoint ({path} not found)")
    payload = load_checkpoint(path)
    if "config" not in payload:
        raise ValueError(
            f"{run_dir} was started by fit() with a model of its own; continue it with "
            f"fit(model, data, ..., run_dir={str(run_dir)!r}, resume=True)"
        )
    bad = set(overrides or {}) - set(RESUME_OVERRIDABLE)
    if bad:
        raise ValueError(f"resume can only override {sorted(RESUME_OVERRIDABLE)}, not {sorted(bad)}")
    cfg_dict = dict(payload["config"])
    cfg_dict.update(overrides or {})
    cfg = TrainConfig.from_dict(cfg_dict)
    del payload
    info = D.setup(cfg.device)
    try:
        bundle = data if data is not None else build_datasets(cfg)
        trainer = Trainer.from_config(cfg, bundle, info=info, callbacks=callbacks, progress=progress, run_dir=run_dir)
        trainer.load(path)
        if info.is_main and progress:
            tqdm.write(
                f"resuming {run_dir} at epoch {trainer.epoch + 1}, batch {trainer.step} of {trainer.steps_per_epoch}"
            )
        return trainer.fit()
    finally:
        D.teardown(info)
