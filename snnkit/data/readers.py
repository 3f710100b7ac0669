"""tonic's dataset readers, made safe offline: files are found where we say, nothing is downloaded unless asked.

tonic (1.7) does the file parsing (``tonic.datasets.hsd`` for SHD/SSC HDF5, ``tonic.io.read_aedat4`` for
CIFAR10-DVS) and the downloading; these subclasses change only how tonic decides the files are present:

* tonic puts files under ``save_to/<ClassName>/``. A subclass would change that folder, so the folder is passed in
  explicitly (``location_on_system`` below).
* ``HSD._check_exists`` wants the ``.zip`` archive *and* any ``.h5`` in the folder: a user who placed the extracted
  ``shd_train.h5`` by hand is sent to the network, and ``shd_test.h5`` alone passes the check for the train split.
  Here the specific extracted file is what counts; an archive beside it (``.zip`` or the original ``.h5.gz``) is
  extracted locally.
* ``CIFAR10DVS._check_exists`` wants ``CIFAR10DVS.zip`` plus >= 1000 ``.aedat4`` files; a hand-placed or partially
  extracted copy triggers a full re-download. Here each class folder is checked and completed from the class
  archive when that archive is at hand.
* tonic's ``urlopen`` has no timeout, so behind a firewall that drops packets it hangs forever. Downloads happen
  only with ``download=True`` and run with a socket timeout; otherwise a missing file raises
  :class:`~snnkit.data.errors.DatasetNotFoundError` at once, naming the path, the file and the URL.
* A truncated or corrupt HDF5 file or archive raises :class:`~snnkit.data.errors.CorruptDatasetError` naming it,
  instead of h5py's message without a file name.
* tonic trusts the content of an SHD/SSC file: a label 2.7 becomes 2, ``spikes/units`` shorter than
  ``spikes/times`` is broadcast or fails in numpy, a NaN time becomes -2**63 microseconds, a spike at 1e5 s asks
  for a frame array of many GB. Here the file is checked when it is opened and each sample when it is read (the
  rules: :mod:`snnkit.data._checks`), and the error names the file and the sample. A sample is read as tonic does
  (times in seconds times 1e6, truncated to integer microseconds; polarity 1), with the file closed afterwards.
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
import socket
import urllib.error
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import tonic.datasets
from tonic.download_utils import extract_archive
from tonic.io import make_structured_array

from ._checks import MAX_SPIKE_TIME_S, check_hsd_file, check_hsd_sample, check_positive_number
from .errors import CorruptDatasetError, DatasetNotFoundError, DownloadError

__all__ = ["SHDReader", "SSCReader", "SpokenDigitsReader", "CIFAR10DVSReader", "HSD_KEYS", "natural_key"]

# Datasets an SHD/SSC file must contain (Cramer et al. 2020, "The Heidelberg spiking data sets ..."); tonic reads
# all five (extra/keys and extra/speaker in its constructor).
HSD_KEYS = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")

# Seconds without a byte before a download gives up (tonic's urlopen has no timeout of its own).
DOWNLOAD_TIMEOUT_S = 60.0


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # tonic calls urllib without a timeout argument, so the process default is the only knob; restore it after.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _extract(archive: Path, to: Path) -> None:
    """Extract with tonic's extractor; a broken archive becomes an error that names it."""
    try:
        extract_archive(str(archive), str(to))
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise CorruptDatasetError(
            f"cannot extract {archive}: {error}. The archive is truncated or corrupt (an interrupted download?): "
            "delete it and download it again."
        ) from error


class _LocalFiles(abc.ABC):
    """Mixin for a tonic dataset: explicit folder, local-only existence check, opt-in download.

    Subclasses implement ``_check_exists`` (tonic's hook, called by the tonic constructor before it reads files)
    and ``_missing_message``.
    """

    def __init__(self, folder: str | os.PathLike[str], *args: object, download: bool = False, **kwargs: object):
        # Set before tonic's constructor runs: it assigns location_on_system and calls _check_exists/download.
        self._folder = Path(folder).expanduser()
        self._allow_download = download
        super().__init__(str(self._folder), *args, **kwargs)

    @property
    def location_on_system(self) -> str:
        return str(self._folder)

    @location_on_system.setter
    def location_on_system(self, _derived: str) -> None:
        # tonic.Dataset.__init__ assigns save_to/<ClassName>; the folder was fixed explicitly in __init__.
        pass

    @abc.abstractmethod
    def _missing_message(self) -> str:
        """The error text for missing files: expected paths, file names, where to get them."""

    def download(self) -> None:
        """tonic calls this when ``_check_exists`` is false: download only when the user asked for it."""
        if not self._allow_download:
            raise DatasetNotFoundError(self._missing_message())
        url = getattr(self, "url", "?")
        archive = self._folder / getattr(self, "filename", "")
        existed = archive.is_file()
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                super().download()  # type: ignore[misc]
        except BaseException as error:
            # tonic opens the target file before connecting, so a failed or interrupted (Ctrl-C) download leaves an
            # empty or partial archive that the next run would trust: remove it.
            if not existed and archive.is_file():
                archive.unlink()
            if not isinstance(error, (OSError, urllib.error.URLError, RuntimeError)):
                raise
            # RuntimeError: tonic's md5 mismatch ("File not found or corrupted.")
            raise DownloadError(
                f"download of {url} into {self._folder} failed: {error}. Without network access, download the "
                f"file on another machine and place it there.\n{self._missing_message()}"
            ) from error


def validate_hsd_file(path: Path, num_classes: int) -> None:
    """Raise :class:`CorruptDatasetError` unless ``path`` is a readable HDF5 file in SHD/SSC layout whose labels,
    speakers and per-sample datasets are consistent (:func:`snnkit.data._checks.check_hsd_file`)."""
    try:
        with h5py.File(path, "r") as file:
            missing = [key for key in HSD_KEYS if key not in file]
            if missing:
                raise CorruptDatasetError(
                    f"{path} lacks {', '.join(missing)}: not in the SHD/SSC HDF5 layout ({', '.join(HSD_KEYS)})"
                )
            check_hsd_file(path, file, num_classes)
    except CorruptDatasetError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise CorruptDatasetError(
            f"{path} is not a readable HDF5 file ({error}); it is probably truncated or corrupt: delete it and "
            "download/extract it again."
        ) from error


class _HSDLocal(_LocalFiles):
    """tonic's HSD readers (SHD, SSC) with an existence check for the extracted ``.h5`` of *this* split, the file
    checked when opened and each sample when read.

    ``max_spike_time_s`` (keyword, default :data:`~snnkit.data._checks.MAX_SPIKE_TIME_S` = 10 s): a sample with a
    later spike raises :class:`CorruptDatasetError` (SHD/SSC recordings last about 1 s).
    """

    dataset_name = "?"
    #: labels must lie in [0, num_classes) and extra/keys name that many classes
    num_classes = 0

    def __init__(self, folder: str | os.PathLike[str], *args: object, max_spike_time_s: float = MAX_SPIKE_TIME_S,
                 **kwargs: object):
        self.max_spike_time_s = check_positive_number("max_spike_time_s", max_spike_time_s)
        super().__init__(folder, *args, **kwargs)

    def download(self) -> None:
        super().download()
        validate_hsd_file(self._h5_path(), self.num_classes)

    def __len__(self) -> int:
        with h5py.File(self._h5_path(), "r") as file:
            return len(file["labels"])

    def __getitem__(self, index: int) -> tuple[object, object]:
        """``(events, label)`` as tonic's HSD reader returns them, after the sample's checks."""
        path = self._h5_path()
        try:
            with h5py.File(path, "r") as file:
                times = np.asarray(file["spikes/times"][index])
                units = np.asarray(file["spikes/units"][index])
                label = np.int64(file["labels"][index])  # whole numbers, checked when the file was opened
        except (OSError, KeyError, ValueError, TypeError) as error:
            raise CorruptDatasetError(f"{path}: cannot read sample {index}: {error}") from error
        check_hsd_sample(
            path, index, times, units, channels=self.sensor_size[0], max_spike_time_s=self.max_spike_time_s
        )
        # as tonic: seconds -> microseconds in float64, truncated to int by the structured array; polarity 1
        events = make_structured_array(times.astype(np.float64) * 1e6, units, 1, dtype=self.dtype)
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return events, label

    def _h5_path(self) -> Path:
        return self._folder / self.data_filename  # type: ignore[attr-defined]

    def _archives(self) -> list[Path]:
        # tonic downloads <name>.h5.zip; the original distribution (compneuro.net) ships <name>.h5.gz
        return [self._folder / self.filename, self._folder / (self.data_filename + ".gz")]  # type: ignore[attr-defined]

    def _check_exists(self) -> bool:
        h5 = self._h5_path()
        if not h5.is_file():
            archive = next((a for a in self._archives() if a.is_file()), None)
            if archive is None:
                return False
            _extract(archive, self._folder)
            if not h5.is_file():
                raise CorruptDatasetError(f"{archive} was extracted but did not contain {h5.name}")
        validate_hsd_file(h5, self.num_classes)
        return True

    def _missing_message(self) -> str:
        h5 = self._h5_path()
        archive, url = self.filename, self.url  # type: ignore[attr-defined]
        return (
            f"{self.dataset_name} file not found: expected {h5}\n"
            f"  (or its archive {archive} / {h5.name}.gz in {self._folder}, extracted automatically).\n"
            f"  Get it from {url} and place it there, or pass download=True (CLI: --download) to let tonic download it."
        )


class SHDReader(_HSDLocal, tonic.datasets.SHD):
    """``tonic.datasets.SHD`` reading ``<folder>/shd_{train,test}.h5``.

    Args:
        folder: the folder holding the files (tonic's ``save_to/SHD``).
        train: train split if True, else test.
        download: let tonic download the archive when the file is missing.
        transform: tonic transform applied to each event array.
        max_spike_time_s: latest accepted spike time, seconds (default 10); a later one is a corrupt sample.
    """

    dataset_name = "SHD"
    num_classes = 20

    def __init__(
        self,
        folder: str | os.PathLike[str],
        train: bool = True,
        *,
        download: bool = False,
        transform: Callable | None = None,
        max_spike_time_s: float = MAX_SPIKE_TIME_S,
    ):
        super().__init__(
            folder, train=train, transform=transform, download=download, max_spike_time_s=max_spike_time_s
        )


class SSCReader(_HSDLocal, tonic.datasets.SSC):
    """``tonic.datasets.SSC`` reading ``<folder>/ssc_{train,valid,test}.h5``; arguments as :class:`SHDReader`."""

    dataset_name = "SSC"
    num_classes = 35

    def __init__(
        self,
        folder: str | os.PathLike[str],
        split: str = "train",
        *,
        download: bool = False,
        transform: Callable | None = None,
        max_spike_time_s: float = MAX_SPIKE_TIME_S,
    ):
        super().__init__(
            folder, split=split, transform=transform, download=download, max_spike_time_s=max_spike_time_s
        )


class SpokenDigitsReader(_HSDLocal, tonic.datasets.SHD):
    """tonic's SHD reader pointed at snnkit's bundled ``spoken_digits_{train,test}.h5`` (same HDF5 layout).

    There is nothing to download: the files ship with snnkit.
    """

    dataset_name = "bundled spoken-digits"
    num_classes = 20
    train_zip = "spoken_digits_train.h5.zip"
    test_zip = "spoken_digits_test.h5.zip"
    train_md5 = None
    test_md5 = None

    def __init__(
        self,
        folder: str | os.PathLike[str],
        train: bool = True,
        *,
        transform: Callable | None = None,
        max_spike_time_s: float = MAX_SPIKE_TIME_S,
    ):
        super().__init__(folder, train=train, transform=transform, download=False, max_spike_time_s=max_spike_time_s)

    def _missing_message(self) -> str:
        return (
            f"bundled spoken-digits file not found: expected {self._h5_path()}. It ships with snnkit "
            "(datasets/spoken_digits/ in a source checkout, snnkit/_bundled/spoken_digits/ in a wheel); "
            "reinstall snnkit or restore the file."
        )


def natural_key(path: str) -> list[object]:
    """Sort key comparing digit runs as numbers: ``x_2`` before ``x_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


class CIFAR10DVSReader(_LocalFiles, tonic.datasets.CIFAR10DVS):
    """``tonic.datasets.CIFAR10DVS`` reading ``<folder>/<class>/*.aedat4`` (files sorted by name).

    Accepted layouts, checked per class without network access: the extracted class folder; the class archive
    ``<class>.zip`` (extracted, and re-extracted when the folder holds fewer recordings than the archive: an
    interrupted extraction); the figshare archive ``CIFAR10DVS.zip`` holding the class archives.

    tonic lists the recordings with ``os.walk`` without sorting the files, so the order (and any split built on
    it) would depend on the file system; here they are sorted by name in natural order.

    Args:
        folder: the folder holding the files (tonic's ``save_to/CIFAR10DVS``).
        download: let tonic download and extract the archive (several GB) when classes are missing.
        transform: tonic transform applied to each event array.
    """

    def __init__(self, folder: str | os.PathLike[str], *, download: bool = False, transform: Callable | None = None):
        self._missing_classes: list[str] = []
        super().__init__(folder, transform=transform, download=download)
        order = sorted(range(len(self.data)), key=lambda i: natural_key(os.path.relpath(self.data[i], self._folder)))
        self.data = [self.data[i] for i in order]
        self.targets = [self.targets[i] for i in order]

    def _class_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for path in self._folder.rglob("*.aedat4"):
            if path.parent.name not in counts:
                # tonic labels a recording by its parent folder name and would fail with a bare KeyError
                raise CorruptDatasetError(
                    f"{path} is not inside a class folder: expected {self._folder}/<class>/*.aedat4 with <class> "
                    f"one of {', '.join(self.classes)}"
                )
            counts[path.parent.name] += 1
        return counts

    def _check_exists(self) -> bool:
        if not self._folder.is_dir():
            self._missing_classes = list(self.classes)
            return False
        counts = self._class_counts()
        class_archives = {name: self._folder / f"{name}.zip" for name in self.classes}
        outer = self._folder / self.filename
        if outer.is_file() and any(counts[c] == 0 and not class_archives[c].is_file() for c in self.classes):
            _extract(outer, self._folder)
        for name, archive in class_archives.items():
            if archive.is_file() and counts[name] < _count_members(archive, ".aedat4"):
                _extract(archive, self._folder)
        counts = self._class_counts()
        self._missing_classes = [name for name, count in counts.items() if count == 0]
        return not self._missing_classes

    def _missing_message(self) -> str:
        missing = ", ".join(self._missing_classes)
        return (
            f"CIFAR10-DVS recordings not found in {self._folder} for class(es): {missing}.\n"
            f"  Expected {self._folder}/<class>/*.aedat4 for the 10 classes ({', '.join(self.classes)}), or the "
            f"class archives <class>.zip, or the archive {self.filename}, in that folder (extracted automatically).\n"
            f"  Get {self.filename} from {self.url} (figshare, several GB) and place it there, or pass "
            "download=True (CLI: --download) to let tonic download it. Reading needs the 'aedat' package (pip install aedat)."
        )


def _count_members(archive: Path, suffix: str) -> int:
    try:
        with zipfile.ZipFile(archive) as zipped:
            return sum(name.endswith(suffix) for name in zipped.namelist())
    except (zipfile.BadZipFile, OSError) as error:
        raise CorruptDatasetError(
            f"cannot read {archive}: {error}. The archive is truncated or corrupt: delete it and download it again."
        ) from error
