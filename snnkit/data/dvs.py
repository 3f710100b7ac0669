"""CIFAR10-DVS (Li et al. 2017) as event frames ``[T, 2, size, size]``, with the usual 90/10 per-class split.

Recordings are read by ``tonic.datasets.CIFAR10DVS`` (AEDAT4 through the ``aedat`` package; see
:mod:`snnkit.data.readers` for the file layout it accepts offline). Each recording becomes ``time_steps`` frames of
equal duration spanning its first to last event (every event counted once: :func:`snnkit.data.frames.equal_time_bins`
fixes tonic's ``ToFrame(n_time_bins=...)`` dropping the tail), two polarity channels (OFF, ON), resized from the
128 x 128 sensor to ``size`` x ``size`` by adaptive average pooling. Binning ~1 s recordings of ~100k events is slow,
so frames are cached on disk by default (``tonic.DiskCachedDataset``, :mod:`snnkit.data.cache`).

CIFAR10-DVS has no official split; papers use 90 % of each class for training and 10 % for testing, 1000
recordings per class (e.g. SLTT, Meng et al. ICCV 2023, with T = 10 and 48 x 48 frames).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ._checks import check_choice, check_fraction, check_int
from .cache import disk_cached, fingerprint
from .errors import CorruptDatasetError
from .frames import count_frames, equal_time_bins, resize_frames
from .paths import dataset_folder
from .readers import CIFAR10DVSReader
from .store import FrameStore, PaddedBatch, check_store_mode, iterate_samples, open_or_build

__all__ = ["DVSFrames", "CIFAR10DVS", "split_per_class"]

SENSOR_SIZE = (128, 128, 2)  # tonic's (W, H, P) for CIFAR10-DVS

# what reading a damaged recording raises (h5py for the cache, aedat, numpy); other exceptions are bugs, not data
_READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, EOFError)


@dataclass(frozen=True)
class DVSFrames:
    """tonic transform: DVS events -> ``[time_steps, 2, size, size]`` float32 frames.

    Args:
        time_steps: number of equal time bins from the first to the last event.
        size: output height and width; the 128 x 128 count frames are adaptive-average-pooled to it.
        binary: 1 where a (pooled) pixel saw any event in the bin, else 0 (for attacks on binary inputs such as
            SDA, Lun et al. CVPR 2025); otherwise event counts (averaged per input pixel when resized).
        sensor_size: tonic ``(W, H, P)``.
    """

    time_steps: int
    size: int
    binary: bool = False
    sensor_size: tuple[int, int, int] = SENSOR_SIZE

    def __call__(self, events: np.ndarray) -> np.ndarray:
        bins = equal_time_bins(events["t"], self.time_steps)
        frames = count_frames(events, bins, self.time_steps, self.sensor_size)  # [T, P, H, W]
        frames = resize_frames(frames, self.size)
        if self.binary:
            frames = (frames > 0).astype(np.float32)
        return frames


def split_per_class(targets: np.ndarray, train_fraction: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: per class, ``round(train_fraction * n_class)`` indices go to train, the rest to test.

    With ``seed`` an int, each class's indices (in dataset order) are shuffled by one
    ``numpy.random.default_rng(seed)`` visiting the classes in ascending order; with ``seed=None`` the first
    indices of each class are the training ones (SpikingJelly's ``split_to_train_test_set`` without
    ``random_split``). Returns sorted index arrays ``(train, test)``.
    """
    targets = np.asarray(targets)
    rng = None if seed is None else np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        if rng is not None:
            members = rng.permutation(members)
        n_train = int(train_fraction * len(members) + 0.5)  # round half up; Python's round() rounds half to even
        train.append(members[:n_train])
        test.append(members[n_train:])
    join = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    return join(train), join(test)


class CIFAR10DVS(Dataset):
    """CIFAR10-DVS event frames: 10 classes, 10 000 recordings of a 128 x 128 DVS sensor.

    Files: ``<root>/CIFAR10DVS/<class>/*.aedat4`` (tonic's layout; the class archives ``<class>.zip`` or the
    figshare archive ``CIFAR10DVS.zip`` in that folder are extracted locally; ``root`` itself holding the class
    folders is understood too). Nothing is downloaded unless ``download=True``. Reading needs the ``aedat``
    package, which tonic does not declare (snnkit does).

    Args:
        root: data root.
        split: ``"train"`` or ``"test"``.
        time_steps: frames per recording (default 10, as SLTT and the SDA attack).
        size: frame height and width, 1..128 (default 128, the sensor; SLTT uses 48).
        frame_mode: ``"count"`` (events per bin and pixel, averaged when resized) or ``"binary"``.
        train_fraction: share of each class used for training (default 0.9).
        split_seed: seed of the per-class shuffle before splitting (default 0); None takes the first recordings
            of each class, in file-name order, for training. See :func:`split_per_class`.
        download: let tonic download the archive when recordings are missing (default False).
        cache: cache frames on disk (default True); the cache is shared by both splits.
        cache_dir: cache folder (default ``<root>/cache``).
        store: ``"memory"`` or ``"disk"``: bin every recording once into a binned-frame store in ``cache_dir``
            (:mod:`snnkit.data.store`, shared by both splits, rebuilt when a parameter or a file changes) and serve
            items and whole batches from it, held in RAM or memory-mapped; it replaces the disk cache (``cache``
            is then ignored). Default None: items come from tonic (through the disk cache when ``cache``).
        store_workers: worker processes binning the recordings when the store is built (default 0).

    Items are ``(frames, label)``: float32 ``[time_steps, 2, size, size]`` (polarity 0 = OFF, 1 = ON) and an int.
    """

    classes = tuple(CIFAR10DVSReader.classes)
    num_classes = 10
    sensor_size = SENSOR_SIZE

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        time_steps: int = 10,
        size: int = 128,
        frame_mode: str = "count",
        train_fraction: float = 0.9,
        split_seed: int | None = 0,
        download: bool = False,
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        store: str | None = None,
        store_workers: int = 0,
    ):
        self.split = check_choice("split", split, ("train", "test"))
        self.time_steps = check_int("time_steps", time_steps, minimum=1)
        self.size = check_int("size", size, minimum=1, maximum=SENSOR_SIZE[0])
        self.frame_mode = check_choice("frame_mode", frame_mode, ("count", "binary"))
        self.train_fraction = check_fraction("train_fraction", train_fraction)
        if split_seed is not None:
            split_seed = check_int("split_seed", split_seed, minimum=0)
        self.split_seed = split_seed
        store = check_store_mode(store)
        store_workers = check_int("store_workers", store_workers, minimum=0)

        if importlib.util.find_spec("aedat") is None:
            # tonic imports it lazily, on the first recording read, and does not declare it as a dependency
            raise ImportError("CIFAR10DVS reads AEDAT4 files with the 'aedat' package: pip install aedat")
        transform = DVSFrames(self.time_steps, self.size, binary=frame_mode == "binary")
        root = Path(root).expanduser()
        folder = dataset_folder(root, "CIFAR10DVS", [*self.classes, "CIFAR10DVS.zip", "airplane.zip"])
        self._reader = CIFAR10DVSReader(folder, download=download, transform=transform)
        #: folder holding the class folders
        self.folder = folder

        targets = np.asarray(self._reader.targets, dtype=np.int64)
        train, test = split_per_class(targets, self.train_fraction, split_seed)
        self._indices = train if self.split == "train" else test
        self.labels: np.ndarray = targets[self._indices]
        #: the recording file of each item
        self.files: list[str] = [self._reader.data[i] for i in self._indices]

        config = {
            "dataset": "CIFAR10DVS",
            "time_steps": self.time_steps,
            "size": self.size,
            "frame_mode": self.frame_mode,
            # keyed by the full, sorted file list: both splits share the cache, a changed copy gets a new one
            "source": fingerprint(self._reader.data, relative_to=folder),
        }
        cache_dir = root / "cache" if cache_dir is None else cache_dir
        # with a store, the per-recording cache would only duplicate it on disk (float32 frames, ~13 GB at 128 px)
        use_cache = cache and store is None
        self._source = disk_cached(self._reader, cache_dir, "CIFAR10DVS", config) if use_cache else self._reader
        #: the binned-frame store of all recordings (both splits), None: items come from tonic
        self.store: FrameStore | None = None
        if store is not None:
            recordings = _Recordings(self)
            self.store = open_or_build(
                cache_dir, "CIFAR10DVS", config, store, lambda: iterate_samples(recordings, store_workers),
                len(recordings), sources=[os.path.abspath(folder)],
            )

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """``(frames [time_steps, 2, size, size] float32, label)``."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for CIFAR10DVS {self.split} with {n} samples")
        index = int(index) % n
        if self.store is not None:
            return self.store.sample(int(self._indices[index]))
        return self._read(int(self._indices[index]))

    def __getitems__(self, indices: list[int]) -> PaddedBatch | list[tuple[torch.Tensor, int]]:
        """A whole batch: gathered from the store in one step when there is one, else ``[self[i] for i in ...]``."""
        if self.store is not None:
            n = len(self)
            if any(not -n <= i < n for i in indices):
                raise IndexError(f"an index of {list(indices)} is out of range for CIFAR10DVS {self.split} ({n})")
            return self.store.batch(self._indices[np.asarray(indices, dtype=np.int64) % n])
        return [self[i] for i in indices]

    def _read(self, recording: int) -> tuple[torch.Tensor, int]:
        """Recording number ``recording`` of the whole dataset (both splits) through tonic."""
        try:
            frames, label = self._source[recording]
        except CorruptDatasetError:
            raise
        except Exception as error:
            # aedat raises RuntimeError on truncated files, tonic a bare Exception when there is no event stream
            if not isinstance(error, _READ_ERRORS) and type(error) is not Exception:
                raise
            raise CorruptDatasetError(f"{self._reader.data[recording]}: cannot read recording: {error}") from error
        return torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)), int(label)

    def __repr__(self) -> str:
        return (
            f"CIFAR10DVS(split={self.split!r}, samples={len(self)}, time_steps={self.time_steps}, size={self.size}, "
            f"frame_mode={self.frame_mode!r}, folder={str(self.folder)!r})"
        )


class _Recordings(Dataset):
    """Every recording of a :class:`CIFAR10DVS` (both splits) in file order, read through tonic: the store's source."""

    def __init__(self, dataset: CIFAR10DVS):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset._reader.data)

    def __getitem__(self, recording: int) -> tuple[torch.Tensor, int]:
        return self.dataset._read(recording)
