"""On-disk cache of binned frames with ``tonic.DiskCachedDataset``, keyed so a stale cache is never read.

tonic's cache stores sample ``i`` in ``<cache_path>/<i>_0.hdf5`` and trusts any file with that name: it cannot know
that the transform or the source files changed (its docs say to clear the folder by hand). So the cache folder
here is ``<cache_dir>/<dataset>/<key>``, with ``key`` a hash of everything the frames depend on: the binning
parameters, a version of the binning code, and a fingerprint (names, sizes, modification times) of the source
files. Changing any of them selects a fresh folder; a ``config.json`` in each folder says what it holds.

A sample file left truncated by an interrupted run usually fails to open in h5py and tonic regenerates it; one
that opens but lacks its label (the writer was killed between the two datasets) makes tonic raise ``KeyError``
forever, so :class:`ResilientDiskCache` deletes such a file and regenerates it too.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from tonic import DiskCachedDataset

from snnkit.atomic import atomic_write_text

__all__ = ["FRAMES_VERSION", "fingerprint", "cache_folder", "disk_cached", "ResilientDiskCache"]

# Bump when the frame binning changes in a way that alters cached frames.
FRAMES_VERSION = 1


def fingerprint(paths: Iterable[str | os.PathLike[str]], relative_to: str | os.PathLike[str] | None = None) -> str:
    """Hash of the names, sizes and modification times of ``paths`` (cheap: no file contents are read)."""
    digest = hashlib.sha1()
    for path in paths:
        stat = os.stat(path)
        name = os.path.relpath(path, relative_to) if relative_to is not None else os.fspath(path)
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_folder(cache_dir: str | os.PathLike[str], name: str, config: Mapping[str, object]) -> Path:
    """``<cache_dir>/<name>/<hash of config>``, created, with the config written beside the samples."""
    full = {"frames_version": FRAMES_VERSION, **config}
    text = json.dumps(full, sort_keys=True, default=str)
    folder = Path(cache_dir).expanduser() / name / hashlib.sha1(text.encode()).hexdigest()[:16]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        config_file = folder / "config.json"
        if not config_file.is_file():
            # atomic: DataLoader workers or parallel runs may create the same folder at once
            atomic_write_text(config_file, json.dumps(full, sort_keys=True, indent=2, default=str))
    except OSError as error:
        raise OSError(
            f"cannot create the frame cache in {folder}: {error}. Pass cache_dir= a writable folder, or cache=False"
        ) from error
    return folder


class ResilientDiskCache(DiskCachedDataset):
    """``tonic.DiskCachedDataset`` that regenerates a sample file missing one of its parts."""

    def __getitem__(self, item: int) -> tuple[object, object]:
        try:
            return super().__getitem__(item)
        except KeyError:
            # num_copies is 1 here, so the file is <item>_0.hdf5 (tonic's naming)
            Path(self.cache_path, f"{item}_0.hdf5").unlink(missing_ok=True)
            return super().__getitem__(item)


def disk_cached(
    dataset: object, cache_dir: str | os.PathLike[str], name: str, config: Mapping[str, object]
) -> DiskCachedDataset:
    """Wrap ``dataset`` (items ``(frames, label)``) in tonic's disk cache under :func:`cache_folder`."""
    folder = cache_folder(cache_dir, name, config)
    return ResilientDiskCache(dataset, cache_path=str(folder))
