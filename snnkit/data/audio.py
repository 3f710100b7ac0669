"""Spiking audio datasets as spike-count frames: SHD, SSC (Cramer et al. 2020) and snnkit's bundled spoken digits.

Files are read by tonic's HSD reader (``tonic.datasets.SHD`` / ``SSC``, see :mod:`snnkit.data.readers`), which
returns events with integer microsecond times (tonic truncates ``seconds * 1e6``) and channel ``x`` in [0, 700).
Each sample becomes ``[T, 700 // channel_pool]`` float32 spike counts on a fixed grid of ``dt_ms`` bins anchored at
t = 0, T = last spike's bin + 1 (samples differ in length; :func:`snnkit.data.loader` pads them).

The files are checked (:mod:`snnkit.data._checks`): at open time the labels (whole numbers in ``[0, num_classes)``),
speakers, class names and the per-sample counts; per sample, when read, equal numbers of spike times and units,
finite times in ``[0, max_spike_time_s]`` (default 10 s: a later spike is rejected, not cropped, since it means a
corrupt or mis-scaled file) and units in ``[0, 700)``. A violation raises
:class:`~snnkit.data.errors.CorruptDatasetError` naming the file and the sample. To shorten valid recordings, use
``max_duration_ms`` (drops the spikes after it). Defaults
``dt_ms=10``, ``channel_pool=5`` (700 -> 140 channels) are those of Hammouamri et al., ICLR 2024 ("Learning delays
in spiking neural networks using dilated convolutions with learnable spacings"), 95.07 % on SHD.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from ._checks import MAX_SPIKE_TIME_S, check_choice, check_divides, check_int, check_positive_number
from .cache import disk_cached, fingerprint
from .errors import CorruptDatasetError
from .frames import count_frames, fixed_grid_bins, pool_channels
from .paths import bundled_dir, dataset_folder
from .readers import SHDReader, SpokenDigitsReader, SSCReader
from .store import FrameStore, PaddedBatch, check_store_mode, iterate_samples, open_or_build

__all__ = ["SpikeFrames", "SHD", "SSC", "SpokenDigits", "HSD_CHANNELS"]

# Cochlea-model channels of SHD/SSC (tonic's sensor_size (700, 1, 1)).
HSD_CHANNELS = 700


@dataclass(frozen=True)
class SpikeFrames:
    """tonic transform: SHD/SSC events -> ``[T, 700 // channel_pool]`` float32 spike counts.

    Bin k counts the spikes with ``k * dt_us <= t < (k + 1) * dt_us``; every spike before ``max_duration_us`` is
    counted exactly once. T is the last counted spike's bin + 1 (1 for a sample without spikes).

    Args:
        dt_us: bin width in microseconds.
        channel_pool: number of neighbouring channels summed into one.
        max_duration_us: drop spikes at or after this time (None keeps all); T <= ceil(max_duration_us / dt_us).
    """

    dt_us: float
    channel_pool: int = 1
    max_duration_us: float | None = None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        if self.max_duration_us is not None:
            events = events[events["t"] < self.max_duration_us]
        bins = fixed_grid_bins(events["t"], self.dt_us)
        n_bins = int(bins.max()) + 1 if len(bins) else 1
        frames = count_frames(events, bins, n_bins, (HSD_CHANNELS, 1, 1))[:, 0]  # [T, 1 polarity, 700] -> [T, 700]
        return pool_channels(frames, self.channel_pool)


def _is_read_error(error: BaseException) -> bool:
    # h5py raises OSError/KeyError/ValueError on damaged data; our binning raises ValueError on bad coordinates
    return isinstance(error, (OSError, KeyError, ValueError, RuntimeError, EOFError))


class _SpikeAudioFrames(Dataset):
    """Common part of :class:`SHD`, :class:`SSC`, :class:`SpokenDigits`: items ``(frames [T, C], label)``."""

    num_classes: int = 0
    name: str = ""

    def _open_local_or_download(self, root, split, prefix, make_reader, dt_ms, channel_pool, max_duration_ms,
                                max_spike_time_s, download, cache, cache_dir, store, store_workers) -> None:
        """SHD and SSC: ``<root>/<NAME>/<prefix>_<split>.h5`` (or its archive), read by a local-first tonic reader."""
        transform, params = _frames_transform(dt_ms, channel_pool, max_duration_ms, max_spike_time_s)
        names = [f"{prefix}_{split}.h5", f"{prefix}_{split}.h5.zip", f"{prefix}_{split}.h5.gz"]
        folder = dataset_folder(root, self.name, names)
        reader = make_reader(
            folder, split, download=download, transform=transform, max_spike_time_s=params["max_spike_time_s"]
        )
        cache_dir = Path(root).expanduser() / "cache" if cache_dir is None else cache_dir
        self._setup(
            reader, split=split, cache=cache, cache_dir=cache_dir, store=store, store_workers=store_workers, **params
        )

    def _setup(
        self,
        reader: SHDReader | SSCReader | SpokenDigitsReader,
        *,
        split: str,
        dt_ms: float,
        channel_pool: int,
        max_duration_ms: float | None,
        max_spike_time_s: float,
        cache: bool,
        cache_dir: str | os.PathLike[str] | None,
        store: str | None = None,
        store_workers: int = 0,
    ) -> None:
        store = check_store_mode(store)
        store_workers = check_int("store_workers", store_workers, minimum=0)
        self.split = split
        self.dt_ms = dt_ms
        self.channel_pool = channel_pool
        self.max_duration_ms = max_duration_ms
        self.max_spike_time_s = max_spike_time_s
        #: number of input channels of an item: 700 // channel_pool
        self.num_channels = HSD_CHANNELS // channel_pool
        #: the HDF5 file read
        self.path: Path = reader._h5_path()
        self._reader = reader
        # the reader checked these when it opened the file: whole-number labels in [0, num_classes), equal counts
        with h5py.File(self.path, "r") as file:
            self.labels: np.ndarray = file["labels"][()].astype(np.int64)
            self.speakers: np.ndarray = file["extra/speaker"][()].astype(np.int64)
            keys = file["extra/keys"][()]
        self.classes: list[str] = [k.decode() if isinstance(k, bytes) else str(k) for k in keys]
        config = {
            "dataset": self.name,
            "split": split,
            "dt_ms": dt_ms,
            "channel_pool": channel_pool,
            "max_duration_ms": max_duration_ms,
            "max_spike_time_s": max_spike_time_s,
            "source": fingerprint([self.path]),
        }
        for wanted, option in ((cache, "cache=True"), (store is not None, f"store={store!r}")):
            if wanted and cache_dir is None:
                raise ValueError(f"{self.name}: {option} needs cache_dir (the bundled folder may be read-only)")
        self._source = disk_cached(reader, cache_dir, self.name, config) if cache else reader
        #: the binned-frame store items and batches come from (None: every item goes through tonic)
        self.store: FrameStore | None = None
        if store is not None:
            assert cache_dir is not None
            self.store = open_or_build(
                cache_dir, self.name, config, store, lambda: iterate_samples(self, store_workers), len(self),
                sources=[os.path.abspath(self.path)],
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """``(frames [T, num_channels] float32, label)``."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {self.name} {self.split} with {n} samples")
        index = int(index) % n
        if self.store is not None:
            return self.store.sample(index)
        try:
            frames, label = self._source[index]
        except CorruptDatasetError:
            raise
        except Exception as error:
            if not _is_read_error(error):
                raise
            raise CorruptDatasetError(f"{self.path}: cannot read sample {index}: {error}") from error
        return torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)), int(label)

    def __getitems__(self, indices: list[int]) -> PaddedBatch | list[tuple[torch.Tensor, int]]:
        """A whole batch: gathered from the store in one step when there is one, else ``[self[i] for i in ...]``.

        ``torch.utils.data.DataLoader`` calls this with each batch's indices; :func:`snnkit.data.pad_collate`
        passes a :class:`~snnkit.data.store.PaddedBatch` through and pads a list.
        """
        if self.store is not None:
            return self.store.batch(indices)
        return [self[i] for i in indices]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, samples={len(self)}, dt_ms={self.dt_ms}, "
            f"channels={self.num_channels}, path={str(self.path)!r})"
        )


def _frames_transform(
    dt_ms: object, channel_pool: object, max_duration_ms: object, max_spike_time_s: object
) -> tuple[SpikeFrames, dict]:
    dt = check_positive_number("dt_ms", dt_ms)
    pool = check_divides("channel_pool", channel_pool, HSD_CHANNELS)
    max_ms = None if max_duration_ms is None else check_positive_number("max_duration_ms", max_duration_ms)
    max_us = None if max_ms is None else max_ms * 1000.0
    limit_s = check_positive_number("max_spike_time_s", max_spike_time_s)
    transform = SpikeFrames(dt_us=dt * 1000.0, channel_pool=pool, max_duration_us=max_us)
    return transform, {"dt_ms": dt, "channel_pool": pool, "max_duration_ms": max_ms, "max_spike_time_s": limit_s}


class SHD(_SpikeAudioFrames):
    """Spiking Heidelberg Digits (Cramer et al. 2020): 20 classes, spoken digits 0-9 in English and German.

    Files: ``<root>/SHD/shd_train.h5`` and ``shd_test.h5`` (tonic's layout; the ``.h5.zip``/``.h5.gz`` archive is
    enough, it is extracted locally; ``<root>/shd_train.h5`` is found too). Nothing is downloaded unless
    ``download=True``, so a machine without network gets a :class:`~snnkit.data.errors.DatasetNotFoundError` at
    once naming the path and the URL (https://zenkelab.org/datasets/shd_train.h5.zip).

    Args:
        root: data root.
        split: ``"train"`` or ``"test"`` (SHD has no validation split).
        dt_ms: time bin in milliseconds (default 10, Hammouamri et al. 2024).
        channel_pool: neighbouring channels summed, must divide 700 (default 5: 140 channels).
        max_duration_ms: drop spikes at or after this time (default None: keep all; SHD lasts up to ~1.4 s).
        max_spike_time_s: latest spike time a valid sample may hold, in seconds (default 10). A sample with a later
            spike raises :class:`~snnkit.data.errors.CorruptDatasetError` when read (it is a corrupt or mis-scaled
            file, whose one late spike would make the sample thousands of bins long).
        download: let tonic download the archive when the file is missing (default False: never touch the network).
        cache: cache the frames on disk with ``tonic.DiskCachedDataset`` (default False: binning SHD is fast).
        cache_dir: cache folder (default ``<root>/cache``).
        store: ``"memory"`` or ``"disk"``: bin every recording once into a binned-frame store in ``cache_dir``
            (:mod:`snnkit.data.store`; rebuilt when a parameter or the file changes) and serve items and whole
            batches from it, held in RAM or memory-mapped. Default None: every item goes through tonic.
        store_workers: worker processes binning the recordings when the store is built (default 0).

    Items are ``(frames, label)``: float32 ``[T, 700 // channel_pool]`` spike counts, T varying per sample, and an
    int label. Attributes: ``labels``, ``speakers`` (arrays over samples), ``classes`` (names), ``num_classes``,
    ``num_channels``, ``path``.
    """

    num_classes = SHDReader.num_classes  # 20
    name = "SHD"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        dt_ms: float = 10.0,
        channel_pool: int = 5,
        max_duration_ms: float | None = None,
        max_spike_time_s: float = MAX_SPIKE_TIME_S,
        download: bool = False,
        cache: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        store: str | None = None,
        store_workers: int = 0,
    ):
        self._open_local_or_download(
            root, check_choice("split", split, ("train", "test")), "shd",
            lambda folder, split, **kw: SHDReader(folder, train=split == "train", **kw),
            dt_ms, channel_pool, max_duration_ms, max_spike_time_s, download, cache, cache_dir, store, store_workers,
        )


class SSC(_SpikeAudioFrames):
    """Spiking Speech Commands (Cramer et al. 2020): 35 classes of spoken command words.

    Files: ``<root>/SSC/ssc_{train,valid,test}.h5`` (or their archives), otherwise as :class:`SHD`; the URL is
    https://zenkelab.org/datasets/ssc_train.h5.zip (and ``ssc_valid``, ``ssc_test``).

    Args:
        root: data root.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        dt_ms, channel_pool, max_duration_ms, max_spike_time_s, download, cache, cache_dir, store, store_workers: as
            :class:`SHD`
            (Hammouamri et al. 2024 use the same 10 ms bins and 140 channels on SSC).
    """

    num_classes = SSCReader.num_classes  # 35
    name = "SSC"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        dt_ms: float = 10.0,
        channel_pool: int = 5,
        max_duration_ms: float | None = None,
        max_spike_time_s: float = MAX_SPIKE_TIME_S,
        download: bool = False,
        cache: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        store: str | None = None,
        store_workers: int = 0,
    ):
        self._open_local_or_download(
            root, check_choice("split", split, ("train", "valid", "test")), "ssc",
            lambda folder, split, **kw: SSCReader(folder, split=split, **kw),
            dt_ms, channel_pool, max_duration_ms, max_spike_time_s, download, cache, cache_dir, store, store_workers,
        )


class SpokenDigits(_SpikeAudioFrames):
    """snnkit's bundled spoken-digit spikes: 20 classes, SHD's HDF5 layout, read by tonic's SHD reader.

    Small enough to ship with the package, so examples and tests run without any download. The train and test
    splits have disjoint speakers (as in SHD). Files: ``spoken_digits_{train,test}.h5`` in
    :func:`snnkit.data.paths.bundled_dir` ``/ "spoken_digits"``.

    Args:
        split: ``"train"`` or ``"test"``.
        dt_ms, channel_pool, max_duration_ms, max_spike_time_s: as :class:`SHD`.
        root: folder holding ``spoken_digits_{split}.h5`` (default: the bundled folder).
        cache: cache frames on disk (default False); needs ``cache_dir``, since the bundled folder may be read-only.
        cache_dir: cache folder (needed by ``cache`` and ``store``).
        store, store_workers: as :class:`SHD`.
    """

    num_classes = SpokenDigitsReader.num_classes  # 20
    name = "SpokenDigits"

    def __init__(
        self,
        split: str = "train",
        *,
        dt_ms: float = 10.0,
        channel_pool: int = 5,
        max_duration_ms: float | None = None,
        max_spike_time_s: float = MAX_SPIKE_TIME_S,
        root: str | os.PathLike[str] | None = None,
        cache: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        store: str | None = None,
        store_workers: int = 0,
    ):
        split = check_choice("split", split, ("train", "test"))
        transform, params = _frames_transform(dt_ms, channel_pool, max_duration_ms, max_spike_time_s)
        folder = bundled_dir() / "spoken_digits" if root is None else Path(root).expanduser()
        reader = SpokenDigitsReader(
            folder, train=split == "train", transform=transform, max_spike_time_s=params["max_spike_time_s"]
        )
        self._setup(
            reader, split=split, cache=cache, cache_dir=cache_dir, store=store, store_workers=store_workers, **params
        )
