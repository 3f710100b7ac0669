"""The training loop: one :class:`Trainer` for every snnkit model, method (BPTT, ...), device and DDP world size.

Exact resume. A run killed at any point and resumed from its last checkpoint ends with bit-identical weights to an
uninterrupted run of the same config on CPU, because everything that influences the remaining computation is
either restored or recomputed deterministically:

- model, optimiser and scheduler states, and the epoch / batches-done counters, are in the checkpoint;
- the order of samples is a pure function of ``(seed, epoch)`` (:class:`~snnkit.training.sampler.ResumableSampler`),
  and a mid-epoch resume skips exactly ``batches_done * batch_size`` indices of that order;
- the global torch / numpy / Python RNG states (dropout masks and anything else random in the forward) are saved
  at the checkpoint (per rank under DDP) and restored, and nothing between a checkpoint and the next batch draws
  from them: the DataLoader gets its own per-epoch seeded generator, iterators are created under
  ``torch.random.fork_rng``, evaluation has no dropout and also runs under ``fork_rng``;
- checkpoints are taken only at batch boundaries, after the optimiser and scheduler steps, where the state is
  fully described by the above. The per-epoch metric sums so far are saved too, so the resumed epoch logs the same
  totals. ``metrics.jsonl`` is rewritten from the history in the checkpoint on resume, so a record written after
  the last checkpoint (by the killed run) is not duplicated.

Limitation: datasets whose ``__getitem__`` draws random numbers inside DataLoader workers (random augmentation)
resume with different worker RNG streams; the snnkit datasets are deterministic.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import SequentialSampler, Subset
from tqdm.auto import tqdm

from snnkit import models
from snnkit.neurons import reset as reset_neurons

from . import distributed as D
from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    capture_rng_state,
    check_model_matches,
    load_checkpoint,
    model_signature,
    restore_rng_state,
    save_checkpoint,
)
from .config import TrainConfig
from .datasets import DataBundle, build_datasets, make_loader
from .losses import predict, rate_cross_entropy, time_mean
from .methods import StepContext, get_method
from .metrics import EpochStats, SpikeCounter, append_jsonl, truncate_jsonl
from .plots import plot_learning_curves, plot_raster
from .sampler import ResumableSampler

__all__ = ["Trainer", "TrainResult", "train", "resume", "Callback", "METRICS_NAME"]

METRICS_NAME = "metrics.jsonl"
#: A callback runs on every rank after each training batch (counters already advanced); raising stops the run.
Callback = Callable[["Trainer"], None]


@dataclass
class TrainResult:
    """Outcome of :func:`train` / :func:`resume`.

    Attributes:
        run_dir: the run directory (checkpoint, metrics.jsonl, PNGs, config.json).
        test_acc, test_loss: on the test split after the last epoch.
        epochs: epochs completed.
        history: one metrics record per epoch (as in metrics.jsonl).
        model: the trained model (unwrapped from DDP), on the training device.
        rank: this process's rank (0 without DDP); only rank 0 wrote the run directory.
    """

    run_dir: Path
    test_acc: float
    test_loss: float
    epochs: int
    history: list[dict[str, Any]] = field(default_factory=list)
    model: nn.Module | None = None
    rank: int = 0


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    # Distinct per (seed, epoch) and independent of how many batches ran before: the loader generator is re-seeded
    # from this at every epoch start, resumed or not.
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % 2**63


class Trainer:
    """Owns the model, optimiser, scheduler, data order and counters of one run; :meth:`fit` trains to the end.

    Most users call :func:`train` or :func:`resume`; construct a Trainer directly to inspect or drive it.

    Args:
        cfg: the run's configuration.
        data: train/test datasets and the sample shape.
        run_dir: where checkpoints, metrics and plots go (written by rank 0 only).
        info: distributed context from :func:`snnkit.training.distributed.setup`.
        callbacks: called after each batch with the trainer.
        progress: show tqdm bars (rank 0).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        data: DataBundle,
        run_dir: Path,
        info: D.DistInfo | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool = True,
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.run_dir = Path(run_dir)
        self.info = info = info if info is not None else D.DistInfo()
        self.callbacks = list(callbacks)
        self.progress = progress and info.is_main
        self.device = D.resolve_device(cfg.device, info)
        self.model_name = cfg.resolved_model()

        # Same seed on every rank for the weights (DDP also broadcasts rank 0's at wrap time) ...
        _seed_all(cfg.seed)
        self.model = models.build(self.model_name, data.in_shape, data.num_classes, **cfg.model_kwargs).to(self.device)
        # ... then a per-rank stream for dropout, so ranks do not drop the same units on different data.
        _seed_all(cfg.seed + info.rank)
        if info.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net: nn.Module = D.wrap_ddp(self.model, ids)
        else:
            self.net = self.model

        self.sampler = ResumableSampler(data.train, info.world_size, info.rank, shuffle=True, seed=cfg.seed)
        pin = self.device.type == "cuda"
        self.train_loader = make_loader(data.train, cfg.batch_size, self.sampler, cfg.workers, pin)
        self.loader_generator: torch.Generator = self.train_loader.generator
        # Evaluation shards the test set without padding (rank r takes r, r + world, ...) so the summed counts are
        # exact; DistributedSampler would repeat samples to even out the shards.
        test_idx = range(info.rank, len(data.test), info.world_size)
        test_part = Subset(data.test, list(test_idx)) if info.enabled else data.test
        self.test_loader = make_loader(test_part, cfg.batch_size, SequentialSampler(test_part), cfg.workers, pin)
        batches = math.ceil(self.sampler.num_samples / cfg.batch_size)
        self.steps_per_epoch = min(batches, cfg.max_train_batches or batches)

        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = cfg.epochs * self.steps_per_epoch
        if cfg.scheduler == "cosine":
            self.scheduler: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=total
            )
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        self.method = get_method(cfg.method)
        if cfg.amp and self.device.type != "cuda" and info.is_main:
            tqdm.write("note: --amp (bf16 autocast) applies on CUDA only; training in float32 on CPU")
        use_amp = cfg.amp and self.device.type == "cuda"
        self.autocast = partial(torch.autocast, "cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext
        self.ctx = StepContext(
            optimizer=self.optimizer,
            loss_fn=rate_cross_entropy,
            autocast=self.autocast,
            grad_clip=cfg.grad_clip,
            reset=partial(reset_neurons, self.model),
        )

        self.epoch = 0  # index of the epoch in progress (= epochs completed)
        self.step = 0  # batches completed within the epoch in progress
        self.global_step = 0
        self.stats = EpochStats()
        self.history: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- paths
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / METRICS_NAME

    # ---------------------------------------------------------------- checkpoints
    def save(self) -> None:
        """Checkpoint the current batch boundary (collective under DDP: every rank must call it)."""
        D.average_buffers(self.model, self.info)
        rng = D.gather_objects(capture_rng_state(), self.info)
        # Rank 0 stores the epoch's sums over all ranks; on resume it alone restarts from them (others from zero),
        # so the end-of-epoch all-reduce gives the same totals as an uninterrupted run.
        stats = EpochStats.from_tensor(D.all_reduce_sum(self.stats.as_tensor(), self.info, self.device))
        if not self.info.is_main:
            return
        save_checkpoint(
            self.checkpoint_path,
            {
                "model_name": self.model_name,
                "model_signature": model_signature(self.model),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch,
                "step": self.step,
                "global_step": self.global_step,
                "steps_per_epoch": self.steps_per_epoch,
                "world_size": self.info.world_size,
                "rng": rng,
                "sampler": self.sampler.state_dict(),
                "loader_generator": self.loader_generator.get_state(),
                "stats": stats.state_dict(),
                "history": self.history,
                "config": self.cfg.to_dict(),
            },
        )

    def load(self, path: Path) -> None:
        """Restore everything :meth:`save` wrote; refuses checkpoints of other models or incompatible runs."""
        payload = load_checkpoint(path)
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
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.epoch, self.step, self.global_step = payload["epoch"], payload["step"], payload["global_step"]
        self.history = list(payload["history"])
        self.stats = EpochStats.from_state(payload["stats"]) if self.info.is_main else EpochStats()
        rng = payload["rng"]
        if self.info.rank < len(rng):
            restore_rng_state(rng[self.info.rank])
        else:  # more ranks than when saved (only possible at an epoch boundary): a fresh per-rank stream
            _seed_all(self.cfg.seed + self.info.rank + 7_919 * self.epoch)
        if self.info.is_main:
            truncate_jsonl(self.metrics_path, self.history)

    # ---------------------------------------------------------------- training
    def fit(self) -> TrainResult:
        """Train from the current counters to ``cfg.epochs``; returns the final test metrics."""
        counter = SpikeCounter(self.model)
        try:
            while self.epoch < self.cfg.epochs:
                self._train_epoch(counter)
                self._end_epoch(counter)
        except KeyboardInterrupt:
            if self.info.is_main:
                tqdm.write(
                    f"\ninterrupted in epoch {self.epoch + 1}, batch {self.step}; continue from the last checkpoint "
                    f"with: snnkit train --resume {self.run_dir}"
                )
            raise
        finally:
            counter.close()
        if self.history:
            loss, acc = self.history[-1]["test_loss"], self.history[-1]["test_acc"]
        else:  # nothing ran and nothing was logged (cannot happen for runs made by train()): evaluate once
            loss, acc = self.evaluate()
        return TrainResult(self.run_dir, acc, loss, self.epoch, list(self.history), self.model, self.info.rank)

    def _train_epoch(self, counter: SpikeCounter) -> None:
        cfg = self.cfg
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_start(min(self.step * cfg.batch_size, self.sampler.num_samples))
        self.loader_generator.manual_seed(_epoch_seed(cfg.seed, self.epoch))
        self.net.train()
        with torch.random.fork_rng(devices=[]):
            batches = iter(self.train_loader)
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.step,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        try:
            for x, y in batches:
                if self.step >= self.steps_per_epoch:
                    break
                t0 = time.perf_counter()
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                reset_neurons(self.model)
                counter.reset()
                out = self.method.train_step(self.net, x, y, self.ctx)
                self.scheduler.step()
                # Reset after the step too: no state (or graph) of this batch survives into anything that follows.
                reset_neurons(self.model)
                correct = int((predict(out.logits) == y).sum())
                spikes, neuron_steps = counter.totals()
                self.stats.update(float(out.loss), correct, y.numel(), spikes, neuron_steps, time.perf_counter() - t0)
                self.step += 1
                self.global_step += 1
                bar.update(1)
                if self.progress and (self.step % 5 == 0 or self.step == self.steps_per_epoch):
                    # This rank's running figures; the epoch line and metrics.jsonl hold the all-rank totals.
                    postfix = {
                        "loss": f"{self.stats.loss:.3f}",
                        "acc": f"{100 * self.stats.accuracy:.1f}%",
                        "spikes/s": f"{self.stats.spikes_per_s:.3g}",
                        "rate": f"{self.stats.spike_rate:.3f}",
                    }
                    bar.set_postfix(postfix, refresh=False)
                for cb in self.callbacks:
                    cb(self)
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < self.steps_per_epoch:
                    self.save()
        finally:
            bar.close()

    def _end_epoch(self, counter: SpikeCounter) -> None:
        D.average_buffers(self.model, self.info)
        test_loss, test_acc = self.evaluate()
        total = EpochStats.from_tensor(D.all_reduce_sum(self.stats.as_tensor(), self.info, self.device))
        record = {
            "epoch": self.epoch + 1,
            "global_step": self.global_step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": total.loss,
            "train_acc": total.accuracy,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "spike_rate": total.spike_rate,
            # seconds are summed over ranks: divide by the world size for the wall time of the (parallel) epoch.
            "spikes_per_s": total.spikes / max(total.seconds / self.info.world_size, 1e-9),
            "train_seconds": total.seconds / self.info.world_size,
            "samples": total.samples,
            "time": datetime.now().isoformat(timespec="seconds"),
        }
        self.history.append(record)
        self.epoch += 1
        self.step = 0
        self.stats = EpochStats()
        if self.info.is_main:
            # Metrics before the checkpoint: if killed in between, resume redoes the epoch and truncate_jsonl drops
            # this record first, so the log never has a gap or a duplicate.
            append_jsonl(self.metrics_path, record)
            tqdm.write(
                f"epoch {record['epoch']}/{self.cfg.epochs}  train loss {record['train_loss']:.4f} "
                f"acc {100 * record['train_acc']:.2f}%  |  test loss {test_loss:.4f} acc {100 * test_acc:.2f}%  |  "
                f"{record['spike_rate']:.4f} spikes/neuron/step, {record['spikes_per_s']:.3g} spikes/s  "
                f"({record['train_seconds']:.1f} s)"
            )
        self.save()
        every = self.cfg.plot_every
        if self.info.is_main and (self.epoch == self.cfg.epochs or (every and self.epoch % every == 0)):
            plot_learning_curves(self.history, self.run_dir / "curves.png")
            self.plot_spike_raster(counter, self.run_dir / "raster.png")

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """``(loss, accuracy)`` on the test split, summed over all ranks' shards. Never touches the global RNG."""
        self.model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.float64)
        count = torch.zeros((), dtype=torch.float64)
        with torch.random.fork_rng(devices=[]):
            for x, y in self.test_loader:
                x, y = x.to(self.device), y.to(self.device)
                reset_neurons(self.model)
                with self.autocast():
                    out = self.model(x)
                reset_neurons(self.model)
                loss_sum += F.cross_entropy(time_mean(out).float(), y, reduction="sum").double().cpu()
                correct += (predict(out) == y).sum().double().cpu()
                count += y.numel()
        sums = D.all_reduce_sum(torch.stack([loss_sum, correct, count]), self.info, self.device)
        self.model.train()
        n = max(sums[2].item(), 1.0)
        return sums[0].item() / n, sums[1].item() / n

    @torch.no_grad()
    def plot_spike_raster(self, counter: SpikeCounter, path: Path, sample: int = 0, max_layers: int = 3) -> None:
        """Raster PNG of test sample ``sample``: its input events and the spikes of the first neuron layers."""
        frames, label = self.data.test[sample]
        self.model.eval()
        counter.record, counter.recorded = True, {}
        try:
            with torch.random.fork_rng(devices=[]):
                reset_neurons(self.model)
                out = self.model(frames.unsqueeze(1).to(self.device))
                reset_neurons(self.model)
        finally:
            counter.record = False
            self.model.train()
        layers = {"input": frames}
        for name, spikes in list(counter.recorded.items())[:max_layers]:
            layers[f"LIF {name}"] = spikes[:, 0]
        counter.recorded = {}
        pred = int(predict(out)[0])
        plot_raster(layers, path, title=f"test sample {sample}: label {int(label)}, predicted {pred}")


# -------------------------------------------------------------------- entry points
def _new_run_dir(cfg: TrainConfig, info: D.DistInfo) -> Path:
    # Rank 0 picks the name (it holds a timestamp) and tells the others; an error travels the same way so that no
    # rank is left waiting in a collective.
    answer: tuple[str | None, str | None] = (None, None)
    if info.is_main:
        base = cfg.name or f"{cfg.dataset}-{cfg.resolved_model()}-s{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}"
        out = Path(cfg.out)
        name, k = base, 1
        taken = lambda n: (out / n / CHECKPOINT_NAME).exists() or (out / n / METRICS_NAME).exists()  # noqa: E731
        if cfg.name and taken(name):
            answer = (
                None,
                f"run directory {out / name} already holds a run; resume it with --resume or pick another --name",
            )
        else:
            while taken(name):
                name, k = f"{base}-{k}", k + 1
            (out / name).mkdir(parents=True, exist_ok=True)
            (out / name / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
            answer = (name, None)
    name, error = D.broadcast_object(answer, info)
    if error:
        raise FileExistsError(error)
    return Path(cfg.out) / name


def train(
    cfg: TrainConfig,
    *,
    data: DataBundle | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> TrainResult:
    """Start a new run as described by ``cfg`` (under DDP when launched by torchrun).

    Args:
        cfg: the configuration (its ``dataset`` is opened through :mod:`snnkit.data` unless ``data`` is given).
        data: use these datasets instead (tests, custom data); ``cfg.dataset`` is then only a label.
        callbacks: called after every batch with the :class:`Trainer`.
        progress: tqdm bars and per-epoch lines on rank 0.

    Raises:
        ValueError: unknown model or dataset name.
        FileExistsError: ``cfg.name`` names a directory that already holds a run.
        snnkit.data.DatasetNotFoundError: the dataset files are missing (a FileNotFoundError).
    """
    if cfg.resolved_model() not in models.available():  # before anything is created on disk
        raise ValueError(f"unknown model {cfg.resolved_model()!r}; valid names: {', '.join(models.available())}")
    info = D.setup(cfg.device)
    try:
        D.resolve_device(cfg.device, info)  # fail on a bad device before anything is written
        bundle = data if data is not None else build_datasets(cfg)
        run_dir = _new_run_dir(cfg, info)
        trainer = Trainer(cfg, bundle, run_dir, info, callbacks, progress)
        return trainer.fit()
    finally:
        D.teardown(info)


def resume(
    run_dir: str | Path,
    *,
    data: DataBundle | None = None,
    overrides: dict[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
) -> TrainResult:
    """Continue the run in ``run_dir`` from its checkpoint, exactly where it stopped.

    The configuration comes from the checkpoint. ``overrides`` may change only settings that do not affect the
    result: ``device``, ``workers``, ``root``.

    Raises:
        FileNotFoundError: ``run_dir`` has no checkpoint.
        CheckpointError: the checkpoint is truncated, corrupt, foreign or from another model.
    """
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: {run_dir} has no checkpoint ({path} not found)")
    payload = load_checkpoint(path)
    allowed = {"device", "workers", "root", "download"}
    bad = set(overrides or {}) - allowed
    if bad:
        raise ValueError(f"resume can only override {sorted(allowed)}, not {sorted(bad)}")
    cfg_dict = dict(payload["config"])
    cfg_dict.update(overrides or {})
    cfg = TrainConfig.from_dict(cfg_dict)
    del payload
    info = D.setup(cfg.device)
    try:
        bundle = data if data is not None else build_datasets(cfg)
        trainer = Trainer(cfg, bundle, run_dir, info, callbacks, progress)
        trainer.load(path)
        if info.is_main and progress:
            tqdm.write(
                f"resuming {run_dir} at epoch {trainer.epoch + 1}, batch {trainer.step} of {trainer.steps_per_epoch}"
            )
        return trainer.fit()
    finally:
        D.teardown(info)
