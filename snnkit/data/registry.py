"""Name -> dataset registry: ``build_dataset("shd", "train", DatasetSettings(root="~/data"))``.

The table is a :class:`snnkit.registry.Registry`, like those of models and training methods. An entry is a factory
``factory(split, settings) -> Dataset`` that opens one split (``"train"`` or ``"test"``) with the shared
:class:`DatasetSettings`, ignoring the settings that do not apply to it. The dataset it returns yields
``(frames [T, ...], label)`` and carries its number of labels as a ``num_classes`` attribute: the class count is
written once, on the dataset class.

A dataset of your own becomes trainable by name (``snnkit.training.train(TrainConfig(dataset="my-set"))``)::

    from snnkit.data import DATASETS

    @DATASETS.register("my-set")
    def _my_set(split, settings):
        return MySet(settings.root, train=split == "train")  # MySet.num_classes = 12
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from snnkit.registry import Registry

from .audio import SHD, SSC, SpokenDigits
from .dvs import CIFAR10DVS

__all__ = ["DATASETS", "DatasetSettings", "build_dataset"]


@dataclass(frozen=True)
class DatasetSettings:
    """Settings shared by the registered datasets; each one reads those that apply to it.

    Attributes:
        root: data root holding the downloadable datasets (``datasets/`` in the repository); the bundled spoken
            digits ignore it.
        download: let tonic download missing files (default: never touch the network).
        dt_ms: time bin of the audio datasets (SHD, SSC, spoken digits) in milliseconds.
        time_steps: audio datasets: crop every recording to its first ``time_steps`` bins of ``dt_ms`` (None: whole
            recordings); CIFAR10-DVS: frames per recording (None: the dataset's default, 10).
        size: frame side length of CIFAR10-DVS (None: the dataset's default, the full 128 pixel sensor).
        store: ``"memory"`` or ``"disk"``: serve the frames from a binned-frame store built once under
            ``<root>/cache`` (:mod:`snnkit.data.store`); None: every item goes through tonic.
    """

    root: str | os.PathLike[str] = "datasets"
    download: bool = False
    dt_ms: float = 10.0
    time_steps: int | None = None
    size: int | None = None
    store: str | None = None


DatasetFactory = Callable[[str, DatasetSettings], Dataset]
#: The dataset table: ``factory(split, settings) -> Dataset`` with a ``num_classes`` attribute.
DATASETS: Registry[DatasetFactory] = Registry("dataset")


def build_dataset(name: str, split: str, settings: DatasetSettings | None = None) -> Dataset:
    """Open split ``split`` of the registered dataset ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid ones), or a split the dataset does not have.
        TypeError: the factory returned something without an integer ``num_classes`` >= 2.
        snnkit.data.DatasetNotFoundError: the files are missing.
    """
    factory = DATASETS.get(name)
    dataset = factory(split, settings if settings is not None else DatasetSettings())
    k = getattr(dataset, "num_classes", None)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise TypeError(
            f"dataset {name!r}: the factory must return a dataset with an integer num_classes >= 2 attribute, "
            f"got {type(dataset).__name__} with num_classes={k!r}"
        )
    return dataset


def _audio(settings: DatasetSettings) -> dict[str, object]:
    # --time-steps on audio crops each recording to that many dt bins (T <= time_steps).
    crop = settings.time_steps * settings.dt_ms if settings.time_steps is not None else None
    return {"dt_ms": settings.dt_ms, "max_duration_ms": crop, "store": settings.store}


@DATASETS.register("spoken-digits")
def _spoken_digits(split: str, settings: DatasetSettings) -> SpokenDigits:
    # the bundled folder may be read-only: a store goes to <root>/cache like those of the other datasets
    cache_dir = Path(settings.root).expanduser() / "cache" if settings.store is not None else None
    return SpokenDigits(split, cache_dir=cache_dir, **_audio(settings))


@DATASETS.register("shd")
def _shd(split: str, settings: DatasetSettings) -> SHD:
    return SHD(settings.root, split, download=settings.download, **_audio(settings))


@DATASETS.register("ssc")
def _ssc(split: str, settings: DatasetSettings) -> SSC:
    return SSC(settings.root, split, download=settings.download, **_audio(settings))


@DATASETS.register("cifar10dvs")
def _cifar10dvs(split: str, settings: DatasetSettings) -> CIFAR10DVS:
    optional = {"time_steps": settings.time_steps, "size": settings.size}
    return CIFAR10DVS(
        settings.root, split, download=settings.download, store=settings.store,
        **{k: v for k, v in optional.items() if v is not None},
    )
