"""A binned-frame store: every recording binned once into one compact file, batches assembled by gathering.

The tonic path (read a recording, bin it, pool/resize) costs about a millisecond per sample; a GPU step costs less
than that per batch. The store runs the tonic path once over a whole split (the source of truth: the store holds
exactly the frames ``dataset[i]`` returns), writes the frames to one file next to the disk cache, and afterwards
serves whole padded batches ``[T_max, B, ...]`` by index arithmetic and one gather, with no per-sample Python.

File (``<cache_dir>/<dataset>/<key>/frames.store``, ``key`` hashing the binning parameters and the source files'
names, sizes and mtimes via :func:`snnkit.data.cache.cache_folder`, so any change selects a fresh store):

* a 12-byte magic, an 8-byte little-endian header length and a JSON header (layout, dtypes, shapes, byte offsets,
  the key it was built for, the total size), then the arrays, each 64-byte aligned;
* ``labels [N]`` int64, ``lengths [N]`` int64 (frames per sample), ``starts [N + 1]`` int64;
* dense layout: ``values [R, F]`` with the R = sum of lengths frame rows of all samples one after the other
  (sample i is rows ``starts[i] : starts[i] + lengths[i]``), F the features of one frame;
* sparse layout: the nonzero entries, ordered by sample, time and feature, as ``steps`` (time within the sample),
  ``features`` (flat feature index) and ``values``; sample i owns entries ``starts[i] : starts[i + 1]``.

Values are stored in the smallest of uint8 / int16 / int32 (types every torch device can index and convert) that
holds them when every frame value is a whole number (spike counts, binary DVS frames), else float32 (CIFAR10-DVS
frames averaged to a size that does not divide 128). The layout whose file is smaller is chosen per store.

Safety: the builder holds an exclusive lock (``fcntl.flock`` on ``frames.store.lock``, released by the OS when the
process dies) while it writes a temporary file in the same folder, fsyncs it and renames it over the final name,
so a reader sees either no store or a complete one; a second process waiting on the lock finds the finished store
and opens it. Temporary files of a killed build are removed by the next build. An ``OSError`` while building (a
full disk) raises :class:`StoreBuildError` and leaves nothing behind; the dataset without ``store=`` still works.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from snnkit.atomic import _fsync_dir

from ._checks import check_choice
from .cache import cache_folder
from .errors import CorruptDatasetError

try:  # POSIX: a lock that the OS releases when its holder dies
    import fcntl
except ImportError:  # pragma: no cover - Windows: the atomic rename alone keeps the store consistent
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "STORE_MODES",
    "STORE_VERSION",
    "FrameStore",
    "PaddedBatch",
    "StoreBuildError",
    "check_store_mode",
    "build_store",
    "open_or_build",
    "iterate_samples",
]

#: How a store is read: "memory" (the whole file in RAM) or "disk" (memory-mapped; pages are read on demand).
STORE_MODES = ("memory", "disk")
#: Bump when the file layout changes; part of the store key, so an old file is never read by new code.
STORE_VERSION = 1

STORE_NAME = "frames.store"
_MAGIC = b"SNNKITSTORE\x00"
_ALIGN = 64
# whole-number value ranges and the dtype that holds them, smallest first (torch-indexable types only)
_INT_TYPES = (np.uint8, np.int16, np.int32)


class StoreBuildError(OSError):
    """Building a frame store failed on an ``OSError`` (full disk, read-only folder); the message names the file.

    Nothing half-written is left behind, and the dataset opened without ``store=`` keeps working.
    """


class PaddedBatch(NamedTuple):
    """A batch assembled by a store: ``x [T_max, B, ...]`` float32 zero-padded at the end, ``y [B]`` and
    ``lengths [B]`` (long). :func:`snnkit.data.pad_collate` passes it through unchanged."""

    x: torch.Tensor
    y: torch.Tensor
    lengths: torch.Tensor


def check_store_mode(store: object) -> str | None:
    """``None`` (no store) or one of :data:`STORE_MODES`; anything else is a ValueError naming ``store``."""
    if store is None:
        return None
    return check_choice("store", store, STORE_MODES)


def _smallest_int(low: int, high: int) -> np.dtype:
    for dtype in _INT_TYPES:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


class FrameStore:
    """An opened store: batches and single samples, on the device its arrays live on.

    Use :func:`open_or_build`; :meth:`open` reads an existing file.

    Attributes:
        path: the file.
        sample_shape: shape of one frame, e.g. ``(140,)`` or ``(2, 48, 48)``.
        layout: ``"dense"`` or ``"sparse"``.
        labels, lengths: long tensors ``[N]``.
    """

    def __init__(self, path: Path, header: dict, arrays: dict[str, torch.Tensor]):
        self.path = path
        self.header = header
        self.layout: str = header["layout"]
        self.sample_shape: tuple[int, ...] = tuple(header["sample_shape"])
        self._arrays = arrays
        self.labels = arrays["labels"]
        self.lengths = arrays["lengths"]
        self.starts = arrays["starts"]

    # ------------------------------------------------------------------------------------------------ reading
    @classmethod
    def open(cls, path: str | os.PathLike[str], mode: str = "memory") -> FrameStore:
        """Open the store file ``path``, held in RAM (``mode="memory"``) or memory-mapped (``"disk"``).

        Raises:
            CorruptDatasetError: the file is not a complete snnkit store (names the file).
        """
        mode = check_choice("store", mode, STORE_MODES)
        path = Path(path)
        header = read_header(path)
        if mode == "memory":
            raw = np.fromfile(path, dtype=np.uint8)
        else:
            # copy-on-write: torch gets a writable view without a copy, and the file is never modified
            raw = np.memmap(path, dtype=np.uint8, mode="c")
        arrays = {}
        for name, spec in header["arrays"].items():
            arrays[name] = torch.from_numpy(_array_view(raw, spec))
        return cls(path, header, arrays)

    @property
    def device(self) -> torch.device:
        return self.labels.device

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: str | torch.device) -> FrameStore:
        """The same store with every array on ``device`` (the whole store resident there); self if already."""
        device = torch.device(device)
        if self.device == device:
            return self
        return FrameStore(self.path, self.header, {k: v.to(device) for k, v in self._arrays.items()})

    def batch(self, indices: Iterable[int] | torch.Tensor) -> PaddedBatch:
        """Samples ``indices`` as one :class:`PaddedBatch` on the store's device, by a single gather.

        Equal to :func:`snnkit.data.pad_collate` over ``dataset[i]`` for the same indices, bit for bit. On the CPU
        the gather runs in numpy: torch's intra-op thread pool makes these small gathers several times slower on a
        busy machine (measured 5,000 vs 100,000 samples/s for SHD-shaped batches on a loaded 2-core VM).
        """
        if isinstance(indices, torch.Tensor):
            idx = indices.detach().to("cpu", torch.long).numpy().reshape(-1)
        else:
            idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
            idx = idx.reshape(-1)
        n = len(self)
        if idx.size == 0:
            raise ValueError("cannot assemble an empty batch")
        if idx.min() < -n or idx.max() >= n:
            raise IndexError(f"indices out of range for the store {self.path} with {n} samples")
        idx = idx % n
        if self.device.type == "cpu":
            x, y, lengths = self._gather_numpy(idx)
        else:
            x, y, lengths = self._gather_torch(torch.from_numpy(idx).to(self.device))
        return PaddedBatch(x.view(x.shape[0], x.shape[1], *self.sample_shape), y, lengths)

    def _gather_numpy(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        arrays = {k: v.numpy() for k, v in self._arrays.items()}
        lengths, starts, values = arrays["lengths"][idx], arrays["starts"], arrays["values"]
        batch, steps = len(idx), int(lengths.max())
        features = int(np.prod(self.sample_shape, dtype=np.int64))
        if self.layout == "dense":
            # row of frame (t, b) in the store, or any row (zeroed below) past the sample's end
            valid = np.arange(steps)[:, None] < lengths[None]
            rows = np.where(valid, starts[idx][None] + np.arange(steps)[:, None], 0)
            gathered = np.take(values, rows.ravel(), axis=0).reshape(steps, batch, features)
            gathered[~valid] = 0
            x = gathered.astype(np.float32, copy=False)
        else:
            owner, source = _entries(starts[idx], starts[idx + 1] - starts[idx], np)
            x = np.zeros(steps * batch * features, dtype=np.float32)
            position = (arrays["steps"][source].astype(np.int64) * batch + owner) * features
            x[position + arrays["features"][source]] = values[source]
            x = x.reshape(steps, batch, features)
        return torch.from_numpy(x), torch.from_numpy(arrays["labels"][idx]), torch.from_numpy(lengths)

    def _gather_torch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lengths, starts, values = self.lengths[idx], self.starts, self._arrays["values"]
        batch, steps = idx.numel(), int(lengths.max())
        features = int(np.prod(self.sample_shape, dtype=np.int64))
        if self.layout == "dense":
            t = torch.arange(steps, device=idx.device)[:, None]
            valid = t < lengths[None]
            rows = torch.where(valid, starts[idx][None] + t, 0)
            x = values.index_select(0, rows.reshape(-1)).view(steps, batch, features).to(torch.float32)
            x.mul_(valid[..., None])
        else:
            owner, source = _entries(starts[idx], starts[idx + 1] - starts[idx], torch)
            x = torch.zeros(steps, batch, features, dtype=torch.float32, device=idx.device)
            x[self._arrays["steps"][source].long(), owner, self._arrays["features"][source].long()] = (
                values[source].to(torch.float32)
            )
        return x, self.labels[idx], lengths

    def sample(self, index: int) -> tuple[torch.Tensor, int]:
        """``(frames [T_i, ...] float32, label)`` of one sample."""
        x, y, _ = self.batch([index])
        return x[:, 0], int(y[0])

    def __repr__(self) -> str:
        return (
            f"FrameStore(path={str(self.path)!r}, samples={len(self)}, layout={self.layout!r}, "
            f"dtype={self.header['arrays']['values']['dtype']}, device={self.device})"
        )


def read_header(path: Path) -> dict:
    """The JSON header of store ``path``, after checking the magic and that the file is complete.

    Raises:
        CorruptDatasetError: naming the file, for anything but a complete store of this version.
    """

    def corrupt(why: str) -> CorruptDatasetError:
        return CorruptDatasetError(
            f"{path}: not a complete snnkit frame store ({why}); delete it and it is rebuilt from the dataset files"
        )

    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            lead = file.read(len(_MAGIC) + 8)
            if len(lead) < len(_MAGIC) + 8 or lead[: len(_MAGIC)] != _MAGIC:
                raise corrupt("bad magic bytes")
            length = int.from_bytes(lead[len(_MAGIC) :], "little")
            if length <= 0 or length > size:
                raise corrupt(f"header length {length} does not fit a file of {size} bytes")
            header = json.loads(file.read(length).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise corrupt(f"unreadable header: {error}") from error
    if not isinstance(header, dict) or header.get("version") != STORE_VERSION:
        raise corrupt(f"version {header.get('version') if isinstance(header, dict) else None}, expected {STORE_VERSION}")
    try:
        end = int(header["end"])
        for spec in header["arrays"].values():
            nbytes = int(np.prod(spec["shape"], dtype=np.int64)) * np.dtype(spec["dtype"]).itemsize
            if spec["offset"] + nbytes > end:
                raise corrupt("an array runs past the end")
        missing = [k for k in ("layout", "sample_shape", "count") if k not in header]
        if missing:
            raise corrupt(f"the header lacks {missing}")
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, CorruptDatasetError):
            raise
        raise corrupt(f"incomplete header: {error!r}") from error
    if size != end:
        raise corrupt(f"{size} bytes on disk, the header promises {end}")
    return header


# -------------------------------------------------------------------------------------------------- building
def build_store(
    path: str | os.PathLike[str],
    samples: Iterable[tuple[torch.Tensor | np.ndarray, int]],
    count: int,
    key: Mapping[str, object],
    *,
    desc: str = "binning",
    layout: str | None = None,
    sources: Sequence[str] | None = None,
) -> None:
    """Write the store of ``count`` samples ``(frames [T, ...], label)`` to ``path``, atomically.

    Two passes: the samples are streamed once as float32 rows into a scratch file (tracking lengths, labels,
    nonzeros and the value range), then converted chunk by chunk into the chosen layout and dtype in a temporary
    file that is fsynced and renamed to ``path``. Both temporaries are deleted on any failure. ``layout``
    (``"dense"`` or ``"sparse"``) overrides the choice of the smaller one. ``sources``: the source files' paths,
    recorded in the header (outside the key) so that a later build from changed files can remove this store.
    """
    if layout is not None:
        check_choice("layout", layout, ("dense", "sparse"))
    path = Path(path)
    folder = path.parent
    scratch = Path(tempfile.mkstemp(prefix=f".{path.stem}.rows.", suffix=".tmp", dir=folder)[1])
    final_tmp: Path | None = None
    try:
        stats = _write_rows(scratch, samples, count, desc)
        final_tmp = Path(tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)[1])
        _convert(scratch, final_tmp, stats, dict(key), layout, sources)
        os.replace(final_tmp, path)
        final_tmp = None
        _fsync_dir(folder)
    finally:
        scratch.unlink(missing_ok=True)
        if final_tmp is not None:
            final_tmp.unlink(missing_ok=True)


class _RowStats(NamedTuple):
    sample_shape: tuple[int, ...]
    labels: np.ndarray
    lengths: np.ndarray
    nonzeros: np.ndarray  # per sample
    low: float
    high: float
    whole: bool


def _write_rows(scratch: Path, samples: Iterable, count: int, desc: str) -> _RowStats:
    labels = np.zeros(count, dtype=np.int64)
    lengths = np.zeros(count, dtype=np.int64)
    nonzeros = np.zeros(count, dtype=np.int64)
    low, high, whole = 0.0, 0.0, True
    shape: tuple[int, ...] | None = None
    seen = 0
    with open(scratch, "wb") as out, tqdm(total=count, desc=desc, unit="sample", disable=None) as bar:
        for frames, label in samples:
            if seen >= count:
                raise ValueError(f"the dataset yielded more than its {count} samples")
            rows = np.ascontiguousarray(np.asarray(frames, dtype=np.float32))
            if shape is None:
                shape = tuple(rows.shape[1:])
            elif tuple(rows.shape[1:]) != shape:
                raise ValueError(f"sample {seen} has frames {tuple(rows.shape)}, earlier samples [T, *{shape}]")
            if rows.shape[0] < 1:
                raise ValueError(f"sample {seen} has no frames")
            if rows.size:
                low, high = min(low, float(rows.min())), max(high, float(rows.max()))
                whole = whole and bool(np.all(rows == np.floor(rows)))
            labels[seen], lengths[seen] = int(label), rows.shape[0]
            nonzeros[seen] = int(np.count_nonzero(rows))
            rows.tofile(out)
            seen += 1
            bar.update(1)
        out.flush()
        os.fsync(out.fileno())
    if seen != count:
        raise ValueError(f"the dataset yielded {seen} samples, expected {count}")
    if shape is None:
        raise ValueError("cannot build a store of an empty dataset")
    return _RowStats(shape, labels, lengths, nonzeros, low, high, whole)


def _convert(scratch: Path, target: Path, stats: _RowStats, key: dict, layout: str | None,
             sources: Sequence[str] | None = None) -> None:
    features = int(np.prod(stats.sample_shape, dtype=np.int64))
    total_rows = int(stats.lengths.sum())
    nnz = int(stats.nonzeros.sum())
    if stats.whole and np.isfinite(stats.low) and np.isfinite(stats.high):
        value_type = _smallest_int(int(stats.low), int(stats.high))
    else:
        value_type = np.dtype(np.float32)
    step_type = _smallest_int(0, int(stats.lengths.max()) - 1)
    feature_type = _smallest_int(0, features - 1)
    dense_bytes = total_rows * features * value_type.itemsize
    sparse_bytes = nnz * (step_type.itemsize + feature_type.itemsize + value_type.itemsize)
    if layout is None:
        layout = "dense" if dense_bytes <= sparse_bytes else "sparse"

    per_sample = stats.lengths if layout == "dense" else stats.nonzeros
    starts = np.zeros(len(per_sample) + 1, dtype=np.int64)
    np.cumsum(per_sample, out=starts[1:])
    specs: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
        "labels": (np.dtype(np.int64), (len(stats.labels),)),
        "lengths": (np.dtype(np.int64), (len(stats.lengths),)),
        "starts": (np.dtype(np.int64), (len(starts),)),
    }
    if layout == "dense":
        specs["values"] = (value_type, (total_rows, features))
    else:
        specs.update(steps=(step_type, (nnz,)), features=(feature_type, (nnz,)), values=(value_type, (nnz,)))

    header = {
        "version": STORE_VERSION,
        "key": key,
        "sources": None if sources is None else [str(s) for s in sources],
        "layout": layout,
        "sample_shape": list(stats.sample_shape),
        "count": len(stats.labels),
        "arrays": {},
        "end": 0,
    }
    # the header's length depends on the offsets it lists: reserve a generous fixed size first
    reserve = _align(len(json.dumps(header, default=str)) + 64 * len(specs) + 256)
    offset = _align(len(_MAGIC) + 8 + reserve)
    for name, (dtype, shape) in specs.items():
        header["arrays"][name] = {"dtype": dtype.str, "shape": list(shape), "offset": offset}
        offset = _align(offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
    header["end"] = offset
    text = json.dumps(header, default=str).encode("utf-8").ljust(reserve)

    with open(target, "r+b") as file:
        file.truncate(header["end"])
        file.write(_MAGIC + len(text).to_bytes(8, "little") + text)
        file.flush()
    out = np.memmap(target, dtype=np.uint8, mode="r+")

    views = {name: _array_view(out, spec) for name, spec in header["arrays"].items()}
    views["labels"][:] = stats.labels
    views["lengths"][:] = stats.lengths
    views["starts"][:] = starts
    rows = np.memmap(scratch, dtype=np.float32, mode="r", shape=(total_rows, features)) if total_rows else None
    # the time step of every frame row inside its sample
    row_step = np.arange(total_rows) - np.repeat(_row_starts(stats), stats.lengths)
    chunk = max(1, (64 << 20) // (4 * features))  # ~64 MB of float32 rows at a time
    if layout == "dense":
        values = views["values"]
        for begin in range(0, total_rows, chunk):
            values[begin : begin + chunk] = rows[begin : begin + chunk].astype(value_type)
    else:
        steps, feats, values = views["steps"], views["features"], views["values"]
        written = 0
        for begin in range(0, total_rows, chunk):
            block = rows[begin : begin + chunk].reshape(-1, features)
            r, f = np.nonzero(block)  # row-major: ordered by sample, step, feature
            k = len(r)
            steps[written : written + k] = row_step[begin + r]
            feats[written : written + k] = f
            values[written : written + k] = block[r, f].astype(value_type)
            written += k
        if written != nnz:
            raise RuntimeError(f"store conversion found {written} nonzeros, the first pass counted {nnz}")
    out.flush()
    del views, values, out, rows  # unmap before the fsync and the rename
    with open(target, "rb") as file:
        os.fsync(file.fileno())


def _entries(first, counts, xp):  # numpy arrays or torch tensors; xp is the module
    """For consecutive ranges ``first[b] : first[b] + counts[b]``: the range each entry belongs to and its index."""
    total = int(counts.sum())
    if xp is np:
        owner = np.repeat(np.arange(len(counts)), counts)
        ends = np.cumsum(counts)
        return owner, first[owner] + np.arange(total) - (ends - counts)[owner]
    owner = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    ends = torch.cumsum(counts, 0)
    return owner, first[owner] + torch.arange(total, device=counts.device) - (ends - counts)[owner]


def _array_view(raw: np.ndarray, spec: Mapping) -> np.ndarray:
    """The array described by header entry ``spec`` inside the file's bytes ``raw`` (a view, no copy)."""
    dtype = np.dtype(spec["dtype"])
    size = int(np.prod(spec["shape"], dtype=np.int64)) * dtype.itemsize
    return raw[spec["offset"] : spec["offset"] + size].view(dtype).reshape(spec["shape"])


def _row_starts(stats: _RowStats) -> np.ndarray:
    starts = np.zeros(len(stats.lengths), dtype=np.int64)
    np.cumsum(stats.lengths[:-1], out=starts[1:])
    return starts


def _align(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


# --------------------------------------------------------------------------------------------- open or build
@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (POSIX ``flock``: released when the process dies)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _matches(path: Path, key: dict) -> bool:
    header = read_header(path)
    return json.loads(json.dumps(header["key"], default=str)) == json.loads(json.dumps(key, default=str))


def open_or_build(
    cache_dir: str | os.PathLike[str],
    name: str,
    key: Mapping[str, object],
    mode: str,
    samples: Callable[[], Iterable[tuple[torch.Tensor | np.ndarray, int]]],
    count: int,
    sources: Sequence[str] | None = None,
) -> FrameStore:
    """The store of dataset ``name`` for ``key`` under ``cache_dir``, built by iterating ``samples()`` if missing.

    Args:
        cache_dir: the disk cache's folder; the store goes to :func:`~snnkit.data.cache.cache_folder`
            ``(cache_dir, name, key + store version) / "frames.store"``.
        name: dataset name (a folder under ``cache_dir``).
        key: everything the frames depend on (binning parameters, source fingerprint); a different key selects a
            different folder, so a changed parameter or source file gives a fresh build.
        mode: ``"memory"`` or ``"disk"``.
        samples: a function returning an iterable of ``count`` samples ``(frames [T, ...], label)`` in order.
        count: number of samples.
        sources: the source files (or folder) the samples come from. A new build removes the stores of ``name``
            under ``cache_dir`` that were built from the same sources before they changed (their key's ``source``
            fingerprint differs, or an older store layout): nothing can read them again. Stores for other
            parameters of the current files are kept.

    Raises:
        StoreBuildError: the store could not be written (full disk, read-only folder); nothing is left behind.
        CorruptDatasetError: a store file exists but is damaged (the message says to delete it).
    """
    mode = check_store_mode(mode) or "memory"
    full_key = {**dict(key), "store_version": STORE_VERSION}
    folder = cache_folder(cache_dir, name, full_key)
    path = folder / STORE_NAME
    built = False
    if not path.is_file():
        try:
            with _exclusive(folder / f"{STORE_NAME}.lock"):
                if not path.is_file():  # another process may have finished it while this one waited
                    if fcntl is not None:  # holding the lock: any temporary here is from a killed build
                        for stale in folder.glob(f".{Path(STORE_NAME).stem}*.tmp"):
                            stale.unlink(missing_ok=True)
                    build_store(path, samples(), count, full_key, desc=f"{name}: binning into {path}",
                                sources=sources)
                    built = True
        except CorruptDatasetError:
            raise  # a damaged source recording, named by the dataset
        except OSError as error:
            raise StoreBuildError(
                f"cannot build the frame store {path}: {error}. The dataset still reads through tonic without "
                "store=; free some space or pass cache_dir= a writable folder with room for it"
            ) from error
    if built and sources is not None:
        _remove_superseded(folder.parent, path, full_key, [str(s) for s in sources])
    if not _matches(path, full_key):
        raise CorruptDatasetError(f"{path}: the store was built for other settings; delete it and it is rebuilt")
    store = FrameStore.open(path, mode)
    if len(store) != count:
        raise CorruptDatasetError(f"{path}: the store holds {len(store)} samples, the dataset {count}; delete it")
    return store


def _remove_superseded(root: Path, keep: Path, key: dict, sources: list[str]) -> None:
    """Delete the stores under ``root`` built from ``sources`` when they held other contents (another ``source``
    fingerprint or store version than ``key``'s). A process still reading one keeps its open file (POSIX unlink);
    a store that cannot be read, or that does not record its sources, is left alone."""
    def normal(value: object) -> object:
        return json.loads(json.dumps(value, default=str))

    now = normal({k: key.get(k) for k in ("source", "store_version")})
    for other in root.glob(f"*/{STORE_NAME}"):
        if other == keep:
            continue
        try:
            header = read_header(other)
        except (OSError, CorruptDatasetError):
            continue
        old = header.get("key") or {}
        if header.get("sources") == sources and normal({k: old.get(k) for k in now}) != now:
            other.unlink(missing_ok=True)


def iterate_samples(dataset: torch.utils.data.Dataset, workers: int = 0) -> Iterable[tuple[torch.Tensor, int]]:
    """``dataset[0], dataset[1], ...`` in order, read by ``workers`` DataLoader worker processes (0: this one)."""
    if workers == 0:
        return (dataset[i] for i in range(len(dataset)))  # type: ignore[arg-type]
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers)
