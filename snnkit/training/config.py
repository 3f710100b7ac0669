"""The complete, JSON-serialisable description of a training run (saved in every checkpoint for ``resume``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["TrainConfig", "DATASETS"]

#: Dataset names accepted by ``TrainConfig.dataset`` (see :mod:`snnkit.training.datasets`).
DATASETS = ("spoken-digits", "shd", "ssc", "cifar10dvs")


@dataclass
class TrainConfig:
    """Everything that determines a run. Defaults give the quick CPU run on the bundled spoken digits.

    The defaults (spiking MLP 2 x 256, batch 32, AdamW lr 1e-2 cosine-annealed over 12 epochs) were tuned on the
    bundled spoken digits for accuracy per CPU minute.

    Attributes:
        dataset: one of :data:`DATASETS`, or any label when datasets are passed to :func:`~snnkit.training.train`.
        root: data root for the downloadable datasets (``datasets/`` in the repository).
        download: let tonic download missing SHD/SSC/CIFAR10-DVS files (default: a clear error, no network).
        model: a name from :func:`snnkit.models.available`; ``"auto"`` = ``"vgg"`` for cifar10dvs, else ``"mlp"``.
        model_kwargs: extra keyword arguments for the model constructor.
        epochs: number of passes over the training set.
        batch_size: samples per optimiser step (per process under DDP).
        lr: peak learning rate of Adam(W); cosine-annealed to 0 over all steps when ``scheduler="cosine"``.
        weight_decay: AdamW decoupled weight decay.
        scheduler: "cosine" (per optimiser step) or "none".
        method: per-batch training method (:data:`snnkit.training.methods.METHODS`), "bptt".
        grad_clip: global gradient-norm clip, ``None`` for none.
        seed: seeds weights, dropout and the per-epoch shuffling.
        device: "auto", "cpu", "cuda", "cuda:1", ...
        amp: bf16 autocast for forward passes on CUDA (ignored, with a note, on CPU).
        workers: DataLoader worker processes.
        time_steps: frames per sample for cifar10dvs (``None``: 10); for the audio datasets, crop every recording
            to its first ``time_steps`` bins of ``dt_ms`` (``None``: whole recordings, padded per batch).
        size: frame side length for cifar10dvs.
        dt_ms: time bin for the audio datasets (SHD, SSC, spoken digits).
        ckpt_every: also checkpoint every this many batches inside an epoch (0: only at epoch ends).
        plot_every: redraw curves.png and raster.png every this many epochs (0: only after the last epoch).
        max_train_batches: cap on batches per epoch (quick experiments and tests); ``None`` for all.
        out: parent directory of run directories.
        name: run directory name; ``None`` derives ``<dataset>-<model>-s<seed>-<timestamp>``.
    """

    dataset: str = "spoken-digits"
    root: str = "datasets"
    download: bool = False
    model: str = "auto"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-2
    weight_decay: float = 1e-4
    scheduler: str = "cosine"
    method: str = "bptt"
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    workers: int = 0
    time_steps: int | None = None
    size: int = 48
    dt_ms: float = 10.0
    ckpt_every: int = 20
    plot_every: int = 1
    max_train_batches: int | None = None
    out: str = "runs"
    name: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with a readable message for values no run could use."""
        for key in ("epochs", "batch_size", "time_steps", "size"):
            v = getattr(self, key)
            if key == "time_steps" and v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{key} must be a positive integer, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not self.dt_ms > 0:
            raise ValueError(f"dt_ms must be > 0, got {self.dt_ms!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers!r}")
        if self.ckpt_every < 0:
            raise ValueError(f"ckpt_every must be >= 0, got {self.ckpt_every!r}")
        if self.plot_every < 0:
            raise ValueError(f"plot_every must be >= 0, got {self.plot_every!r}")
        if self.max_train_batches is not None and self.max_train_batches <= 0:
            raise ValueError(f"max_train_batches must be positive or None, got {self.max_train_batches!r}")
        if self.scheduler not in ("cosine", "none"):
            raise ValueError(f"scheduler must be 'cosine' or 'none', got {self.scheduler!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")

    def resolved_model(self) -> str:
        """The model name with ``"auto"`` resolved for the dataset."""
        if self.model != "auto":
            return self.model
        return "vgg" if self.dataset == "cifar10dvs" else "mlp"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys (from a newer snnkit) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
