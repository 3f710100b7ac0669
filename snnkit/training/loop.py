"""The training loop: one :class:`Trainer` for every model, method (BPTT, ...), device and DDP world size, and
:func:`fit`, its public front door.

Exact resume. A run killed at any point and resumed from its last checkpoint ends with bit-identical weights to an
uninterrupted run with the same arguments on CPU, because everything that influences the remaining computation is
either restored or recomputed deterministically:

- model, optimiser, scheduler and callback states, and the epoch / batches-done counters, are in the checkpoint;
- the order of samples is a pure function of ``(seed, epoch)`` (:mod:`~snnkit.training.batches`: a
  :class:`~snnkit.training.sampler.ResumableSampler` for datasets and re-created DataLoaders, per-epoch seeding for
  other iterables), and a mid-epoch resume skips exactly the batches already trained on;
- the global torch / numpy / Python RNG states (dropout masks and anything else random in the forward) are saved
  at the checkpoint (per rank under DDP) and restored, and nothing between a checkpoint and the next batch draws
  from them: loaders have their own per-epoch seeded generator, iterators are created under a forked RNG,
  evaluation has no dropout and also runs under ``torch.random.fork_rng``;
- checkpoints are taken only at batch boundaries, after the optimiser and scheduler steps, where the state is
  fully described by the above. The per-epoch sums so far are saved too, so the resumed epoch logs the same
  totals. ``metrics.jsonl`` is rewritten from the history in the checkpoint on resume, so a record written after
  the last checkpoint (by the killed run) is not duplicated.

No host synchronisation per batch: the loss, metric sums and spike counts of an epoch are summed on the device
(:class:`~snnkit.training.metrics.EpochSums`) and read back once per progress-bar refresh (every 5 batches), at
checkpoints and at the end of the epoch.

Limitation: datasets whose ``__getitem__`` draws random numbers inside DataLoader workers (random augmentation)
resume with different worker RNG streams; the snnkit datasets are deterministic.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from snnkit.neurons import reset as reset_neurons
from snnkit.validation import check_positive_int, check_real

from . import distributed as D
from .augment import augment_callbacks
from .batches import EvalBatches, TrainBatches, seed_all
from .callbacks import Callback, as_callbacks, callback_keys, transforms_batches
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    capture_rng_state,
    check_model_matches,
    load_checkpoint,
    model_signature,
    require_keys,
    restore_rng_state,
    save_checkpoint,
)
from .config import DEFAULT_LR, DEFAULT_WEIGHT_DECAY
from .losses import LossFn, get_loss
from .methods import StepContext, TrainingMethod, get_method
from .metrics import EpochSums, Metric, SpikeCounter, append_jsonl, get_metrics, truncate_jsonl
from .plots import plot_learning_curves, plot_raster

__all__ = ["Trainer", "TrainResult", "fit", "METRICS_NAME"]

#: What :meth:`Trainer.load` reads from a checkpoint (all written by :meth:`Trainer.save`).
RESUME_KEYS = ("model", "model_signature", "optimizers", "schedulers", "epoch", "step", "global_step",
               "steps_per_epoch", "world_size", "rng", "data", "sums", "history")

METRICS_NAME = "metrics.jsonl"

Optimizers = Union[
    None,
    torch.optim.Optimizer,
    Sequence[torch.optim.Optimizer],
    Callable[[Iterable[nn.Parameter]], Union[torch.optim.Optimizer, Sequence[torch.optim.Optimizer]]],
]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]
Schedulers = Union[str, None, SchedulerFactory, Sequence[Union[SchedulerFactory, None]]]


@dataclass
class TrainResult:
    """Outcome of :func:`fit`, :func:`~snnkit.training.train` and :func:`~snnkit.training.resume`.

    Attributes:
        run_dir: the run directory (checkpoint, metrics.jsonl, PNGs), ``None`` when nothing was written.
        test_acc, test_loss: on the test data after the last epoch (``None`` without test data or without the
            accuracy metric).
        epochs: epochs completed.
        history: one metrics record per epoch (as in metrics.jsonl).
        model: the trained model (unwrapped from DDP), on the training device.
        rank: this process's rank (0 without DDP); only rank 0 wrote the run directory.
        test_metrics: every metric on the test data after the last epoch, by metric name (``"accuracy"``, ...).
    """

    run_dir: Path | None
    test_acc: float | None
    test_loss: float | None
    epochs: int
    history: list[dict[str, Any]] = field(default_factory=list)
    model: nn.Module | None = None
    rank: int = 0
    test_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float | None:
        """Test accuracy after the last epoch (``None`` without test data or the accuracy metric)."""
        return self.test_metrics.get("accuracy", self.test_acc)


_OPTIMIZER_KINDS = (
    "optimizer must be None (AdamW), a callable params -> Optimizer (or a list of them), or Optimizer instance(s) "
    "built on the model's parameters"
)


def _optimizer_list(obj: Any) -> list[torch.optim.Optimizer] | None:
    """``obj`` as a list of optimisers if it is one or a non-empty list/tuple of them, else None."""
    if isinstance(obj, torch.optim.Optimizer):
        return [obj]
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(o, torch.optim.Optimizer) for o in obj):
        return list(obj)
    return None


def _check_optimizer_arg(optimizer: Optimizers) -> None:
    if optimizer is not None and not callable(optimizer) and _optimizer_list(optimizer) is None:
        raise TypeError(f"{_OPTIMIZER_KINDS}; got {type(optimizer).__name__}")


def _build_optimizers(optimizer: Optimizers, model: nn.Module, lr: float, weight_decay: float) -> list:
    _check_optimizer_arg(optimizer)
    opts = _optimizer_list(optimizer)
    if optimizer is None:
        opts = [torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)]
    elif opts is None:  # a factory
        made = optimizer(model.parameters())  # type: ignore[operator]
        opts = _optimizer_list(made)
        if opts is None:
            raise TypeError(
                "optimizer: the factory must return a torch.optim.Optimizer or a non-empty list of them, "
                f"got {type(made).__name__}"
            )
    owned = {id(p) for p in model.parameters()}
    seen: set[int] = set()
    for i, opt in enumerate(opts):
        for group in opt.param_groups:
            for p in group["params"]:
                if id(p) not in owned:
                    raise ValueError(f"optimizer {i} holds a tensor that is not a parameter of the model")
                if id(p) in seen:
                    raise ValueError(f"optimizer {i}: a parameter is optimised twice (in two optimisers or groups)")
                seen.add(id(p))
    return opts


def _build_schedulers(
    spec: Schedulers, optimizers: list[torch.optim.Optimizer], epochs: int, steps: int | None, interval: str
) -> list[Any]:
    n = len(optimizers)
    if spec is None or spec == "none":
        return [None] * n
    if spec == "cosine":
        if interval == "epoch":
            t_max = epochs
        elif steps is None:
            raise ValueError(
                "scheduler='cosine' needs the number of batches per epoch, but train_data has no len(): pass "
                "max_train_batches, scheduler_interval='epoch', or a scheduler callable"
            )
        else:
            t_max = epochs * steps
        return [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max) for opt in optimizers]
    if isinstance(spec, str):
        raise ValueError(
            f"scheduler must be 'none', 'cosine', a callable optimizer -> LRScheduler or a list of them, got {spec!r}"
        )
    if callable(spec):
        factories: list[Any] = [spec] * n
    elif isinstance(spec, (list, tuple)):
        if len(spec) != n:
            raise ValueError(f"scheduler: {len(spec)} scheduler factories for {n} optimisers (give one per optimiser)")
        factories = list(spec)
    else:
        raise TypeError(f"scheduler must be 'none', 'cosine', a callable or a list of callables, got {spec!r}")
    out = []
    for i, (f, opt) in enumerate(zip(factories, optimizers, strict=True)):
        if f is None:
            out.append(None)
            continue
        if not callable(f):
            raise TypeError(f"scheduler {i} must be a callable optimizer -> LRScheduler or None, got {f!r}")
        sched = f(opt)
        if not all(hasattr(sched, a) for a in ("step", "state_dict", "load_state_dict")):
            raise TypeError(f"scheduler {i}: the factory returned {type(sched).__name__}, not an LR scheduler")
        out.append(sched)
    return out


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(o, device) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj


def _split(batch: Any, what: str) -> tuple[Any, Any]:
    return _split_lengths(batch, what)[:2]


def _split_lengths(batch: Any, what: str) -> tuple[Any, Any, torch.Tensor | None]:
    """``(x, y, lengths)`` of an ``(x, y)`` batch (lengths None) or of an ``(x, y, lengths [B])`` one."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1], None
    if (
        isinstance(batch, (tuple, list))
        and len(batch) == 3
        and isinstance(batch[2], torch.Tensor)
        and batch[2].dim() == 1
        and not batch[2].is_floating_point()
    ):
        return batch[0], batch[1], batch[2]
    got = (
        f"a {type(batch).__name__} of length {len(batch)}" if isinstance(batch, (tuple, list)) else type(batch).__name__
    )
    raise TypeError(f"{what} must yield (x, y) batches, got {got}")


def _count(x: Any, y: Any) -> int:
    """Samples in a batch: the leading size of the target, else the batch axis of a time-first input."""
    if isinstance(y, torch.Tensor) and y.dim() >= 1:
        return int(y.shape[0])
    if isinstance(x, torch.Tensor) and x.dim() >= 2:
        return int(x.shape[1])
    return 1


class Trainer:
    """Owns the model, optimisers, schedulers, data order and counters of one run; :meth:`fit` trains to the end.

    Most users call :func:`fit` (any model) or :func:`~snnkit.training.train` (a registered model from a
    :class:`~snnkit.training.TrainConfig`); construct a Trainer directly to inspect or drive it. Every argument is
    validated here, before anything is written; nothing is written before :meth:`fit`. The arguments are those of
    :func:`fit`, plus:

    Args:
        info: distributed context from :func:`snnkit.training.distributed.setup` (default: one process).
        model_name: saved in checkpoints and checked on resume (default: the model's class name).
        config: a JSON-able description saved in checkpoints (``train`` stores its ``TrainConfig`` there).
        recipe: ``recipe(model, epochs, steps_per_epoch) -> TrainingRecipe | None``, called once the batches per
            epoch are known (:mod:`snnkit.training.recipes`); a recipe replaces ``optimizer``, ``scheduler``,
            ``scheduler_interval``, ``loss`` and ``metrics``, and its callbacks run before ``callbacks``.
            ``from_config`` passes the model's own recipe.
    """

    def __init__(
        self,
        model: nn.Module,
        train_data: Any,
        test_data: Any = None,
        *,
        epochs: int = 10,
        method: str | TrainingMethod = "bptt",
        method_args: Mapping[str, Any] | None = None,
        optimizer: Optimizers = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        scheduler: Schedulers = "none",
        scheduler_interval: str = "step",
        grad_clip: float | None = None,
        loss: str | LossFn = "rate-ce",
        metrics: str | Metric | Iterable[str | Metric] = ("accuracy",),
        callbacks: Iterable[Callback | Callable[[Trainer], Any]] = (),
        batch_size: int = 32,
        workers: int = 0,
        max_train_batches: int | None = None,
        seed: int = 0,
        device: str | torch.device = "auto",
        amp: bool = False,
        run_dir: str | Path | None = None,
        ckpt_every: int = 20,
        plot_every: int = 1,
        progress: bool = True,
        info: D.DistInfo | None = None,
        model_name: str | None = None,
        config: dict[str, Any] | None = None,
        recipe: Callable[[nn.Module, int, int | None], Any] | None = None,
    ) -> None:
        # ---- arguments, all checked before anything is built
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"model {type(model).__name__} has no trainable parameters (none with requires_grad)")
        self.epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        lr = check_real("lr", lr)
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        weight_decay = check_real("weight_decay", weight_decay)
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        grad_clip = check_real("grad_clip", grad_clip, allow_none=True)
        if grad_clip is not None and grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {grad_clip}")
        for name, value in (("workers", workers), ("ckpt_every", ckpt_every), ("plot_every", plot_every)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if max_train_batches is not None:
            max_train_batches = check_positive_int("max_train_batches", max_train_batches)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if scheduler_interval not in ("step", "epoch"):
            raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")
        self.loss_fn = get_loss(loss)
        self.metrics = get_metrics(metrics)
        self.method = get_method(method, method_args)
        self.method.check_model(model)  # e.g. SLTT: the model must run one time step per call
        self.callbacks = as_callbacks(callbacks)
        _check_optimizer_arg(optimizer)

        self.info = info = info if info is not None else D.DistInfo()
        self.device = D.resolve_device(str(device), info)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.seed, self.batch_size, self.grad_clip = seed, batch_size, grad_clip
        self.ckpt_every, self.plot_every = ckpt_every, plot_every
        self.scheduler_interval = scheduler_interval
        self.progress = progress and info.is_main
        self.model_name = model_name or type(model).__name__
        self.config = config

        # ---- data (checked before the model moves or any RNG is touched)
        pin = self.device.type == "cuda"
        self.train_batches = TrainBatches(train_data, batch_size, seed, info.world_size, info.rank, workers, pin,
                                          self.device, lengths=transforms_batches(self.callbacks))
        if self.train_batches.length == 0:
            raise ValueError("train_data is empty (no batches)")
        self.test_batches = (
            EvalBatches(test_data, batch_size, info.world_size, info.rank, workers, pin, self.device)
            if test_data is not None
            else None
        )
        length = self.train_batches.length
        if length is None:
            self.steps_per_epoch: int | None = max_train_batches
        else:
            self.steps_per_epoch = min(length, max_train_batches or length)

        # ---- model, optimisers, schedulers
        self.model = model.to(self.device)
        # A per-rank stream for dropout, so ranks do not drop the same units on different data (the weights are
        # the caller's: DDP broadcasts rank 0's at wrap time).
        seed_all(seed + info.rank)
        if info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net: nn.Module = D.wrap_ddp(self.model, ids)
        else:
            self.net = self.model
        if recipe is not None:
            made = recipe(self.model, self.epochs, self.steps_per_epoch)
            if made is not None:
                optimizer, scheduler = made.optimizer, made.scheduler
                if made.scheduler_interval not in ("step", "epoch"):
                    raise ValueError(f"recipe: scheduler_interval must be 'step' or 'epoch', got "
                                     f"{made.scheduler_interval!r}")
                self.scheduler_interval = scheduler_interval = made.scheduler_interval
                self.loss_fn = get_loss(made.loss)
                self.metrics = get_metrics(made.metrics)
                self.callbacks = [*as_callbacks(made.callbacks), *self.callbacks]
        self.optimizers = _build_optimizers(optimizer, self.model, lr, weight_decay)
        self.schedulers = _build_schedulers(
            scheduler, self.optimizers, self.epochs, self.steps_per_epoch, scheduler_interval
        )

        if amp and self.device.type != "cuda" and info.is_main:
            tqdm.write("note: amp (bf16 autocast) applies on CUDA only; training in float32 on CPU")
        use_amp = amp and self.device.type == "cuda"
        self.autocast = partial(torch.autocast, "cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext
        self.ctx = StepContext(
            optimizers=self.optimizers,
            loss_fn=self.loss_fn,
            autocast=self.autocast,
            grad_clip=grad_clip,
            reset=partial(reset_neurons, self.model),
        )

        self.epoch = 0  # index of the epoch in progress (= epochs completed)
        self.step = 0  # batches completed within the epoch in progress
        self.global_step = 0
        self.sums = EpochSums(self.metrics, self.device)
        self.history: list[dict[str, Any]] = []

    @classmethod
    def from_config(
        cls,
        cfg: Any,
        data: Any,
        *,
        info: D.DistInfo | None = None,
        callbacks: Iterable[Callback | Callable[[Trainer], Any]] = (),
        progress: bool = True,
        run_dir: str | Path | None = None,
    ) -> Trainer:
        """The Trainer of a :class:`~snnkit.training.TrainConfig` run on ``data`` (a
        :class:`~snnkit.training.DataBundle`): seeds ``cfg.seed``, builds ``cfg``'s model from :mod:`snnkit.models`
        and takes every setting from ``cfg``."""
        from snnkit import models

        name = cfg.resolved_model()
        seed_all(cfg.seed)  # the same weights on every rank
        model = models.build(name, data.in_shape, data.num_classes, **cfg.model_kwargs)
        return cls(
            model,
            data.train,
            data.test,
            epochs=cfg.epochs,
            method=cfg.method,
            method_args=cfg.method_args,
            lr=DEFAULT_LR if cfg.lr is None else cfg.lr,
            weight_decay=DEFAULT_WEIGHT_DECAY if cfg.weight_decay is None else cfg.weight_decay,
            scheduler=cfg.scheduler,
            grad_clip=cfg.grad_clip,
            callbacks=[*augment_callbacks(cfg), *as_callbacks(callbacks)],
            batch_size=cfg.batch_size,
            workers=cfg.workers,
            max_train_batches=cfg.max_train_batches,
            seed=cfg.seed,
            device=cfg.device,
            amp=cfg.amp,
            run_dir=run_dir,
            ckpt_every=cfg.ckpt_every,
            plot_every=cfg.plot_every,
            progress=progress,
            info=info,
            model_name=name,
            config=cfg.to_dict(),
            recipe=_config_recipe(cfg, progress and (info is None or info.is_main)),
        )

    # ---------------------------------------------------------------- paths
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / CHECKPOINT_NAME if self.run_dir is not None else None

    @property
    def metrics_path(self) -> Path | None:
        return self.run_dir / METRICS_NAME if self.run_dir is not None else None

    def open_run(self, resume: bool) -> None:
        """Check ``run_dir`` before the run writes to it; with ``resume`` load its checkpoint if it has one.

        Raises:
            FileExistsError: ``run_dir`` already holds a run (checkpoint.pt or metrics.jsonl) and not ``resume``.
            ValueError: ``resume`` without a ``run_dir``.
        """
        if self.run_dir is None:
            if resume:
                raise ValueError("resume=True needs a run_dir to resume from")
            return
        assert self.checkpoint_path is not None and self.metrics_path is not None
        if resume:
            if self.checkpoint_path.is_file():
                self.load(self.checkpoint_path)
                if self.progress:
                    tqdm.write(
                        f"resuming {self.run_dir} at epoch {self.epoch + 1}, batch {self.step} of "
                        f"{self.steps_per_epoch if self.steps_per_epoch is not None else '?'}"
                    )
            elif self.info.is_main and self.metrics_path.exists():
                truncate_jsonl(self.metrics_path, [])  # records of a run killed before its first checkpoint
            return
        if self.checkpoint_path.exists() or self.metrics_path.exists():
            raise FileExistsError(
                f"run_dir {self.run_dir} already holds a run ({CHECKPOINT_NAME} or {METRICS_NAME}); pass "
                "resume=True to continue it, or choose another run_dir"
            )

    # ---------------------------------------------------------------- checkpoints
    def save(self) -> None:
        """Checkpoint the current batch boundary (collective under DDP: every rank must call it).

        Without a ``run_dir`` nothing is written, but the BatchNorm statistics are still averaged over ranks at the
        same points, so a run computes the same with and without a run directory.
        """
        D.average_buffers(self.model, self.info)
        if self.run_dir is None:
            return
        rng = D.gather_objects(capture_rng_state(), self.info)
        # Rank 0 stores the epoch's sums over all ranks; on resume it alone restarts from them (others from zero),
        # so the end-of-epoch all-reduce gives the same totals as an uninterrupted run.
        sums = D.all_reduce_sum(self.sums.packed(), self.info, self.device)
        if not self.info.is_main:
            return
        callbacks = {}
        for key, cb in zip(callback_keys(self.callbacks), self.callbacks, strict=True):
            state = cb.state_dict()
            if state is not None:
                callbacks[key] = state
        payload = {
            "model_name": self.model_name,
            "model_signature": model_signature(self.model),
            "model": self.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "schedulers": [s.state_dict() if s is not None else None for s in self.schedulers],
            "callbacks": callbacks,
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.info.world_size,
            "rng": rng,
            "data": self.train_batches.state_dict(),
            "sums": sums.cpu(),
            "history": self.history,
        }
        if self.config is not None:
            payload["config"] = self.config
        assert self.checkpoint_path is not None
        save_checkpoint(self.checkpoint_path, payload)

    def load(self, path: str | Path) -> None:
        """Restore everything :meth:`save` wrote; refuses checkpoints of other models or incompatible runs."""
        path = Path(path)
        payload = load_checkpoint(path)
        require_keys(path, payload, RESUME_KEYS)
        check_model_matches(path, payload, self.model, self.model_name)
        if payload["steps_per_epoch"] != self.steps_per_epoch:
            raise CheckpointError(
                path,
                f"checkpoint has {payload['steps_per_epoch']} batches per epoch, this run {self.steps_per_epoch} "
                "(different dataset, batch size or world size)",
            )
        if payload["step"] > 0 and payload["world_size"] != self.info.world_size:
            raise CheckpointError(
                path,
                f"mid-epoch checkpoint from {payload['world_size']} processes; resume with the same number "
                f"(this run has {self.info.world_size})",
            )
        saved_opts, saved_scheds = payload["optimizers"], payload["schedulers"]
        if len(saved_opts) != len(self.optimizers):
            raise CheckpointError(path, f"checkpoint has {len(saved_opts)} optimisers, this run {len(self.optimizers)}")
        if [s is None for s in saved_scheds] != [s is None for s in self.schedulers]:
            raise CheckpointError(path, "checkpoint's schedulers do not match this run's (which optimisers have one)")
        if payload["sums"].shape != self.sums.packed().shape:
            raise CheckpointError(path, "checkpoint was written with other metrics than this run's")
        self.model.load_state_dict(payload["model"])
        for opt, state in zip(self.optimizers, saved_opts, strict=True):
            opt.load_state_dict(state)
        for sched, state in zip(self.schedulers, saved_scheds, strict=True):
            if sched is not None:
                sched.load_state_dict(state)
        saved_callbacks = payload.get("callbacks", {})
        for key, cb in zip(callback_keys(self.callbacks), self.callbacks, strict=True):
            if key in saved_callbacks:
                cb.load_state_dict(saved_callbacks[key])
        self.epoch, self.step, self.global_step = payload["epoch"], payload["step"], payload["global_step"]
        self.history = list(payload["history"])
        self.sums = EpochSums(self.metrics, self.device)
        if self.info.is_main:
            self.sums.load_packed(payload["sums"])
        rng = payload["rng"]
        if self.info.rank < len(rng):
            restore_rng_state(rng[self.info.rank])
        else:  # more ranks than when saved (only possible at an epoch boundary): a fresh per-rank stream
            seed_all(self.seed + self.info.rank + 7_919 * self.epoch)
        if self.info.is_main and self.metrics_path is not None:
            truncate_jsonl(self.metrics_path, self.history)

    # ---------------------------------------------------------------- training
    def fit(self) -> TrainResult:
        """Train from the current counters to ``epochs``; returns the final test metrics."""
        counter = SpikeCounter(self.model)
        try:
            for cb in self.callbacks:
                cb.on_train_start(self)
            while self.epoch < self.epochs:
                self._train_epoch(counter)
                self._end_epoch(counter)
        except KeyboardInterrupt:
            if self.info.is_main:
                if self.run_dir is None:
                    how = "nothing was saved (run_dir=None)"
                elif self.config is not None:
                    how = f"continue from the last checkpoint with: snnkit train --resume {self.run_dir}"
                else:
                    how = f"continue from the last checkpoint with fit(..., run_dir={str(self.run_dir)!r}, resume=True)"
                tqdm.write(f"\ninterrupted in epoch {self.epoch + 1}, batch {self.step}; {how}")
            raise
        finally:
            counter.close()
        last = self.history[-1] if self.history else {}
        test_metrics = {m.name: last[f"test_{m.key}"] for m in self.metrics if f"test_{m.key}" in last}
        return TrainResult(
            run_dir=self.run_dir,
            test_acc=test_metrics.get("accuracy"),
            test_loss=last.get("test_loss"),
            epochs=self.epoch,
            history=list(self.history),
            model=self.model,
            rank=self.info.rank,
            test_metrics=test_metrics,
        )

    def _train_epoch(self, counter: SpikeCounter) -> None:
        started_at = self.step
        if started_at == 0:
            for cb in self.callbacks:
                cb.on_epoch_start(self)
        self.net.train()
        batches = self.train_batches.epoch(self.epoch, self.step)
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.step,
            desc=f"epoch {self.epoch + 1}/{self.epochs}",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        step_schedulers = [s for s in self.schedulers if s is not None] if self.scheduler_interval == "step" else []
        try:
            for batch in batches:
                if self.steps_per_epoch is not None and self.step >= self.steps_per_epoch:
                    break
                t0 = time.perf_counter()
                x, y, lengths = _split_lengths(batch, "train_data")
                x, y, lengths = _to_device((x, y, lengths), self.device)
                for cb in self.callbacks:
                    x, y, lengths = cb.transform_batch(self, x, y, lengths)
                reset_neurons(self.model)
                counter.reset()
                out = self.method.train_step(self.net, x, y, self.ctx)
                for sched in step_schedulers:
                    sched.step()
                # Reset after the step too: no state (or graph) of this batch survives into anything that follows.
                reset_neurons(self.model)
                metric_sums = [m.batch(out.logits, y) for m in self.metrics]
                self.sums.add(out.loss, _count(x, y), counter.spikes, counter.neuron_steps, metric_sums)
                self.step += 1
                self.global_step += 1
                bar.update(1)
                if self.progress and (self.step % 5 == 0 or self.step == self.steps_per_epoch):
                    # This rank's running figures (one host read); the epoch line holds the all-rank totals.
                    now = self.sums.summary(self.sums.packed())
                    postfix = {"loss": f"{now['loss']:.3f}"}
                    postfix.update({m.key: m.format(now[m.key]) for m in self.metrics})
                    postfix["spikes/s"] = f"{now['spikes'] / max(now['seconds'], 1e-9):.3g}"
                    postfix["rate"] = f"{now['spike_rate']:.3f}"
                    bar.set_postfix(postfix, refresh=False)
                self.sums.seconds += time.perf_counter() - t0
                for cb in self.callbacks:
                    cb.on_batch_end(self)
                if (
                    self.ckpt_every
                    and self.step % self.ckpt_every == 0
                    and (self.steps_per_epoch is None or self.step < self.steps_per_epoch)
                ):
                    self._drain()
                    self.save()
        finally:
            bar.close()
        self._drain()
        if started_at == 0 and self.step == 0:
            hint = (
                "; a one-shot iterator (e.g. a generator) is used up after one epoch: pass a list or an object whose "
                "__iter__ starts a new pass"
                if self.epoch > 0
                else ""
            )
            raise ValueError(f"train_data yielded no batches in epoch {self.epoch + 1}{hint}")

    def _drain(self) -> None:
        """Wait for the queued device work and count the wait as training time (the per-batch timer sees only the
        host side of asynchronous CUDA batches); called where the loop synchronises anyway."""
        if self.device.type == "cuda":
            t0 = time.perf_counter()
            torch.cuda.synchronize(self.device)
            self.sums.seconds += time.perf_counter() - t0

    def _end_epoch(self, counter: SpikeCounter) -> None:
        if self.scheduler_interval == "epoch":
            for sched in self.schedulers:
                if sched is not None:
                    sched.step()
        D.average_buffers(self.model, self.info)
        test = self.evaluate()
        total = self.sums.summary(D.all_reduce_sum(self.sums.packed(), self.info, self.device))
        world = self.info.world_size
        record: dict[str, Any] = {
            "epoch": self.epoch + 1,
            "global_step": self.global_step,
            "lr": self.optimizers[0].param_groups[0]["lr"],
        }
        lrs = [[g["lr"] for g in opt.param_groups] for opt in self.optimizers]
        if sum(len(g) for g in lrs) > 1:
            record["lrs"] = lrs  # per optimiser, per parameter group
        record["train_loss"] = total["loss"]
        record.update({f"train_{m.key}": total[m.key] for m in self.metrics})
        if test is not None:
            record["test_loss"] = test["loss"]
            record.update({f"test_{m.key}": test[m.key] for m in self.metrics})
        record.update(
            {
                "spike_rate": total["spike_rate"],
                # seconds are summed over ranks: divide by the world size for the wall time of the (parallel) epoch.
                "spikes_per_s": total["spikes"] / max(total["seconds"] / world, 1e-9),
                "train_seconds": total["seconds"] / world,
                "samples": int(total["samples"]),
                "time": datetime.now().isoformat(timespec="seconds"),
            }
        )
        self.history.append(record)
        for cb in self.callbacks:
            cb.on_epoch_end(self)
        self.epoch += 1
        self.step = 0
        self.sums = EpochSums(self.metrics, self.device)
        if self.info.is_main:
            # Metrics before the checkpoint: if killed in between, resume redoes the epoch and truncate_jsonl drops
            # this record first, so the log never has a gap or a duplicate.
            if self.metrics_path is not None:
                append_jsonl(self.metrics_path, record)
            parts = [f"train loss {record['train_loss']:.4f}"]
            parts += [f"{m.key} {m.format(record[f'train_{m.key}'])}" for m in self.metrics]
            line = f"epoch {record['epoch']}/{self.epochs}  " + " ".join(parts)
            if test is not None:
                tparts = [f"test loss {test['loss']:.4f}"] + [f"{m.key} {m.format(test[m.key])}" for m in self.metrics]
                line += "  |  " + " ".join(tparts)
            line += (
                f"  |  {record['spike_rate']:.4f} spikes/neuron/step, {record['spikes_per_s']:.3g} spikes/s  "
                f"({record['train_seconds']:.1f} s)"
            )
            tqdm.write(line)
        self.save()
        every = self.plot_every
        if (
            self.info.is_main
            and self.run_dir is not None
            and (self.epoch == self.epochs or (every and self.epoch % every == 0))
        ):
            panels = [(m.key, m.label or m.key, m.plot_scale) for m in self.metrics]
            plot_learning_curves(self.history, self.run_dir / "curves.png", panels)
            self.plot_spike_raster(counter, self.run_dir / "raster.png")

    @torch.no_grad()
    def evaluate(self) -> dict[str, float] | None:
        """Loss and metrics on the test data, summed over all ranks' shards (``None`` without test data): a dict
        with ``loss``, ``samples`` and each metric's value by its key. Never touches the global RNG."""
        if self.test_batches is None:
            return None
        self.model.eval()
        sums = EpochSums(self.metrics, self.device)
        try:
            with torch.random.fork_rng(devices=[]):
                for batch in self.test_batches:
                    x, y = _split(batch, "test_data")
                    x, y = _to_device(x, self.device), _to_device(y, self.device)
                    reset_neurons(self.model)
                    with self.autocast():
                        out = self.model(x)
                    reset_neurons(self.model)
                    sums.add(self.loss_fn(out, y), _count(x, y), 0.0, 0, [m.batch(out, y) for m in self.metrics])
        finally:
            self.model.train()
        return sums.summary(D.all_reduce_sum(sums.packed(), self.info, self.device))

    @torch.no_grad()
    def plot_spike_raster(self, counter: SpikeCounter, path: Path, max_layers: int = 3) -> None:
        """Raster PNG of the first test sample: its input and the spikes of the first neuron layers (nothing
        without test data or for inputs that are not one time-first tensor)."""
        if self.test_batches is None:
            return
        with torch.random.fork_rng(devices=[]):
            sample = self.test_batches.first_sample()
        if sample is None:
            return
        frames, y = _split(sample, "test_data")
        if not isinstance(frames, torch.Tensor) or frames.dim() < 2 or frames.shape[1] != 1:
            return
        self.model.eval()
        counter.record, counter.recorded = True, {}
        try:
            with torch.random.fork_rng(devices=[]):
                reset_neurons(self.model)
                out = self.model(frames.to(self.device))
                reset_neurons(self.model)
        finally:
            counter.record = False
            self.model.train()
        layers = {"input": frames[:, 0]}
        for name, spikes in list(counter.recorded.items())[:max_layers]:
            layers[f"LIF {name}"] = spikes[:, 0]
        counter.recorded = {}
        from snnkit.models.decoding import class_scores

        title = "test sample 0"
        if isinstance(y, torch.Tensor) and y.dim() == 1 and isinstance(out, torch.Tensor) and out.dim() in (2, 3):
            title += f": label {int(y[0])}, predicted {int(class_scores(self.model, out)[:1].argmax(-1))}"
        plot_raster(layers, path, title=title)


def _config_recipe(cfg: Any, note: bool) -> Callable[[nn.Module, int, int | None], Any]:
    """The recipe hook of a config run: the model's own recipe (its ``training_recipe``), given the user's
    ``lr`` / ``weight_decay`` where the config sets them (``None``: the recipe's own)."""
    from .recipes import model_recipe

    lr, weight_decay = cfg.lr, cfg.weight_decay

    def hook(model: nn.Module, epochs: int, steps_per_epoch: int | None) -> Any:
        made = model_recipe(model, epochs, steps_per_epoch, lr=lr, weight_decay=weight_decay)
        if made is not None and note:
            tqdm.write(f"note: {cfg.resolved_model()} trains with its recipe {model.training_recipe!r} (its own "
                       "optimisers, schedules, loss and metrics; --scheduler is not used)")
        return made

    return hook


def fit(
    model: nn.Module,
    train_data: Any,
    *,
    test_data: Any = None,
    epochs: int = 10,
    method: str | TrainingMethod = "bptt",
    method_args: Mapping[str, Any] | None = None,
    optimizer: Optimizers = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    scheduler: Schedulers = "none",
    scheduler_interval: str = "step",
    grad_clip: float | None = None,
    loss: str | LossFn = "rate-ce",
    metrics: str | Metric | Iterable[str | Metric] = ("accuracy",),
    callbacks: Iterable[Callback | Callable[[Trainer], Any]] = (),
    batch_size: int = 32,
    workers: int = 0,
    max_train_batches: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    amp: bool = False,
    run_dir: str | Path | None = None,
    resume: bool = False,
    ckpt_every: int = 20,
    plot_every: int = 1,
    progress: bool = True,
) -> TrainResult:
    """Train any model built from snnkit neurons and layers; resumable, on one process or many (DDP).

    Example::

        from snnkit.training import fit
        result = fit(model, train_loader, test_data=test_loader, epochs=20,
                     optimizer=lambda params: torch.optim.Adam(params, 1e-3), run_dir="runs/mine")
        result.history, result.test_accuracy
        fit(model, train_loader, test_data=test_loader, epochs=20, optimizer=..., run_dir="runs/mine", resume=True)

    Args:
        model: an ``nn.Module`` taking ``x [T, B, ...]`` and returning logits ``[T, B, K]`` or ``[B, K]`` (or
            whatever ``loss`` and ``metrics`` accept). Moved to ``device`` in place.
        train_data: a map-style Dataset of ``(frames [T, ...], label)`` samples, a DataLoader over one, or any
            iterable of ``(x, y)`` batches; see :mod:`snnkit.training.batches` for how each is ordered, sharded
            under DDP and resumed.
        test_data: the same kinds (evaluated after every epoch, never shuffled); ``None``: no test metrics.
        epochs: passes over the training data (the total, also when resuming).
        method: a name from :data:`~snnkit.training.METHODS` (``"bptt"``) or a
            :class:`~snnkit.training.TrainingMethod` instance; ``method_args`` are passed to a named method.
        optimizer: ``None``: ``AdamW(model.parameters(), lr, weight_decay)``; a callable called with
            ``model.parameters()`` returning an optimiser or a list of them (build parameter groups inside, the
            argument may be ignored); or optimiser instance(s) built on the model's parameters. Each parameter
            may belong to one optimiser only.
        lr, weight_decay: of the default AdamW (checked even when ``optimizer`` is given).
        scheduler: ``"none"``; ``"cosine"`` (every optimiser annealed to 0 over the run, per step or per epoch);
            a callable ``optimizer -> LRScheduler`` applied to each optimiser; or a list with one such callable (or
            ``None``) per optimiser. Schedulers are stepped without arguments.
        scheduler_interval: ``"step"`` (after every optimiser step) or ``"epoch"`` (after each epoch's batches).
        grad_clip: clip the global gradient norm over all parameters to this before each step; ``None``: no clip.
        loss: a name from :data:`~snnkit.training.LOSSES` (``"rate-ce"``) or a callable
            ``(logits, target) -> scalar`` (mean over the batch); used for training and evaluation.
        metrics: names from :data:`~snnkit.training.METRICS` (``"accuracy"``) or
            :class:`~snnkit.training.Metric` objects, recorded as ``train_<key>`` / ``test_<key>``.
        callbacks: :class:`~snnkit.training.Callback` objects (per-batch and per-epoch hooks) or plain callables
            ``f(trainer)`` run after every batch.
        batch_size, workers: loader settings when ``train_data`` / ``test_data`` is a Dataset (``batch_size`` per
            process under DDP).
        max_train_batches: cap on the batches per epoch; ``None``: all.
        seed: the data order, and the global RNGs (seeded with ``seed + rank`` at the start, for dropout).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        amp: bf16 autocast of forward passes on CUDA (ignored, with a note, on CPU).
        run_dir: ``None``: write nothing. A directory: ``checkpoint.pt`` (atomic, checksummed, every epoch and every
            ``ckpt_every`` batches), ``metrics.jsonl`` (one record per epoch), ``curves.png`` and ``raster.png``
            (every ``plot_every`` epochs and after the last; 0: only after the last).
        resume: continue the run in ``run_dir`` from its checkpoint (a fresh start if it has none), exactly where
            it stopped, given the same model, data and arguments. Without ``resume`` a ``run_dir`` that already
            holds a run is refused.
        progress: tqdm bars on rank 0 (the one-line summary of each epoch is printed regardless).

    Returns:
        :class:`TrainResult`: ``history``, ``test_accuracy``, ``test_metrics``, the model, ...

    Raises:
        ValueError, TypeError: an invalid argument (named in the message), checked before anything is written.
        FileExistsError: ``run_dir`` holds a run and ``resume`` is false.
        CheckpointError: the checkpoint in ``run_dir`` is damaged or does not fit this model and data.
    """
    info = D.setup(str(device))
    try:
        trainer = Trainer(
            model,
            train_data,
            test_data,
            epochs=epochs,
            method=method,
            method_args=method_args,
            optimizer=optimizer,
            lr=lr,
            weight_decay=weight_decay,
            scheduler=scheduler,
            scheduler_interval=scheduler_interval,
            grad_clip=grad_clip,
            loss=loss,
            metrics=metrics,
            callbacks=callbacks,
            batch_size=batch_size,
            workers=workers,
            max_train_batches=max_train_batches,
            seed=seed,
            device=device,
            amp=amp,
            run_dir=run_dir,
            ckpt_every=ckpt_every,
            plot_every=plot_every,
            progress=progress,
            info=info,
        )
        trainer.open_run(resume)
        return trainer.fit()
    finally:
        D.teardown(info)
