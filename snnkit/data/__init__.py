"""snnkit.data: tonic-backed event datasets as time-binned frames, with disk caching and time-first batching.

Datasets (items ``(frames, label)``, frames a float32 tensor ``[T, ...]``):

* :class:`SHD`, :class:`SSC`: Heidelberg spiking audio (Cramer et al. 2020), ``[T, 700 // channel_pool]`` spike
  counts in ``dt_ms`` bins (defaults 10 ms and 140 channels, Hammouamri et al. ICLR 2024).
* :class:`SpokenDigits`: a small spoken-digit set bundled with snnkit in SHD's format; no download.
* :class:`CIFAR10DVS`: ``[time_steps, 2, size, size]`` event frames (Li et al. 2017), 90/10 split per class.

Each is registered by name in :data:`DATASETS` (``"spoken-digits"``, ``"shd"``, ``"ssc"``, ``"cifar10dvs"``;
:func:`build_dataset` opens one split, and a dataset registered there can be trained on by name).

:func:`loader` batches them time-first, ``x [T_max, B, ...]`` zero-padded at the end and ``y [B]``.

With ``store="memory"`` or ``"disk"`` a dataset bins every recording once into a binned-frame store
(:mod:`snnkit.data.store`) and the loader gathers whole batches from it, optionally on a device::

    train = data.SSC("~/data", split="train", dt_ms=10, channel_pool=5, store="memory")
    batches = data.loader(train, batch_size=256, shuffle=True, seed=0, device="cuda")

Files are read by tonic's own readers (``tonic.datasets``); nothing is downloaded unless ``download=True``, so a
missing file fails at once with :class:`DatasetNotFoundError` naming the path and URL. Where the files go:
``datasets/README.md``.

Example::

    from snnkit import data
    train = data.SHD("~/data", split="train", dt_ms=10, channel_pool=5)
    for x, y in data.loader(train, batch_size=64, shuffle=True, seed=0):
        ...  # x: [T, 64, 140], y: [64]
"""

from .audio import SHD, SSC, SpikeFrames, SpokenDigits
from .dvs import CIFAR10DVS, DVSFrames, split_per_class
from .errors import CorruptDatasetError, DatasetNotFoundError, DownloadError
from .loading import loader, pad_collate
from .paths import bundled_dir
from .registry import DATASETS, DatasetSettings, build_dataset
from .store import STORE_MODES, FrameStore, PaddedBatch, StoreBuildError
from .text import ByteTokenizer, CharTokenizer, FileTokenizer, LMWindows, default_corpus, read_corpus

__all__ = [
    "SHD",
    "SSC",
    "SpokenDigits",
    "CIFAR10DVS",
    "DATASETS",
    "DatasetSettings",
    "build_dataset",
    "loader",
    "pad_collate",
    "SpikeFrames",
    "DVSFrames",
    "split_per_class",
    "bundled_dir",
    "DatasetNotFoundError",
    "CorruptDatasetError",
    "DownloadError",
    "STORE_MODES",
    "FrameStore",
    "PaddedBatch",
    "StoreBuildError",
    "ByteTokenizer",
    "CharTokenizer",
    "FileTokenizer",
    "LMWindows",
    "default_corpus",
    "read_corpus",
]
