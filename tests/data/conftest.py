"""Fixtures for snnkit.data: small dataset files in the exact on-disk formats tonic reads, and a network guard.

No real dataset can be downloaded here, so the tests write:
* SHD/SSC: HDF5 in the Heidelberg layout (Cramer et al. 2020): ``spikes/times`` (variable-length float seconds;
  float16 by default, the narrowest type a file may use, so tonic's float64 cast and truncation to integer
  microseconds is exercised), ``spikes/units`` (variable-length uint16 channel 0..699), ``labels``, ``extra/keys``
  (class names, bytes), ``extra/speaker``.
* CIFAR10-DVS: AEDAT4 recordings written with iniVation's ``dv-processing`` (the format's reference library),
  128 x 128 DVS, one folder per class inside ``<class>.zip``, those inside ``CIFAR10DVS.zip`` (figshare layout).
"""

from __future__ import annotations

import socket
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass
class HSDSample:
    times_s: np.ndarray  # float16 seconds, sorted
    units: np.ndarray  # uint16
    label: int
    speaker: int

    def times_us(self) -> np.ndarray:
        """Integer microseconds exactly as tonic's HSD reader computes them (float64 * 1e6, truncated)."""
        return (self.times_s.astype(np.float64) * 1e6).astype(np.int64)


def make_hsd_samples(
    n: int, n_classes: int, seed: int, *, max_s: float = 1.2, n_speakers: int = 6, empty: tuple[int, ...] = ()
) -> list[HSDSample]:
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        count = 0 if i in empty else int(rng.integers(50, 600))
        times = np.sort(rng.uniform(0.0, rng.uniform(0.3, max_s), count)).astype(np.float16)
        times.sort()  # float16 rounding keeps order, but be explicit
        units = rng.integers(0, 700, count).astype(np.uint16)
        samples.append(HSDSample(times, units, int(i % n_classes), int(rng.integers(0, n_speakers))))
    return samples


def write_hsd(path: Path, samples: list[HSDSample], n_classes: int, times_dtype: type = np.float16) -> Path:
    """Write ``samples`` to ``path`` in the SHD/SSC HDF5 layout."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        times = file.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(times_dtype))
        units = file.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, sample in enumerate(samples):
            times[i] = sample.times_s.astype(times_dtype)
            units[i] = sample.units
        file["labels"] = np.array([s.label for s in samples], dtype=np.uint8)
        file["extra/keys"] = np.array([f"word-{k}".encode() for k in range(n_classes)])
        file["extra/speaker"] = np.array([s.speaker for s in samples], dtype=np.uint8)
    return path


def zip_file(source: Path, archive: Path, arcname: str | None = None) -> Path:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.write(source, arcname or source.name)
    return archive


@pytest.fixture(scope="session")
def formats() -> SimpleNamespace:
    """The file writers, as a fixture: ``from conftest import ...`` would break when other test folders have a
    conftest.py of their own (they all import as the module ``conftest``)."""
    return SimpleNamespace(
        make_hsd_samples=make_hsd_samples,
        write_hsd=write_hsd,
        zip_file=zip_file,
        make_dvs_recordings=make_dvs_recordings,
        write_aedat4=write_aedat4,
        CIFAR_CLASSES=CIFAR_CLASSES,
    )


@pytest.fixture(scope="session")
def shd_samples() -> dict[str, list[HSDSample]]:
    return {"train": make_hsd_samples(24, 20, seed=1, empty=(5,)), "test": make_hsd_samples(10, 20, seed=2)}


@pytest.fixture()
def shd_root(tmp_path: Path, shd_samples: dict[str, list[HSDSample]]) -> Path:
    """``<root>/SHD/shd_{train,test}.h5`` placed by hand: extracted files only, no archive."""
    for split, samples in shd_samples.items():
        write_hsd(tmp_path / "SHD" / f"shd_{split}.h5", samples, 20)
    return tmp_path


class NetworkUsed(OSError):
    pass


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every socket connection and DNS lookup fail at once, and record the attempts."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args[:2]))
        raise NetworkUsed(f"network access attempted: {args[:2]!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


# ----------------------------------------------------------------------------------------------- CIFAR10-DVS


@dataclass
class DVSRecording:
    t: np.ndarray  # uint64 microseconds, sorted
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray  # bool, True = ON
    label: int
    name: str


def make_dvs_recordings(per_class: int, seed: int) -> list[DVSRecording]:
    rng = np.random.default_rng(seed)
    recordings = []
    for label, cls in enumerate(CIFAR_CLASSES):
        for k in range(per_class):
            n = int(rng.integers(2000, 6000))
            start = int(rng.integers(0, 50_000))
            t = np.sort(rng.integers(start, start + int(rng.integers(200_000, 1_300_000)), n)).astype(np.uint64)
            # a few duplicate timestamps and the extreme corners of the sensor
            t[1] = t[0]
            x = rng.integers(0, 128, n).astype(np.uint16)
            y = rng.integers(0, 128, n).astype(np.uint16)
            x[:2], y[:2] = (0, 127), (127, 0)
            p = rng.random(n) < 0.5
            recordings.append(DVSRecording(t, x, y, p, label, f"cifar10_{cls}_{k}.aedat4"))
    return recordings


def write_aedat4(path: Path, rec: DVSRecording) -> Path:
    """One AEDAT4 file with a single 128 x 128 event stream, written by dv-processing."""
    import dv_processing as dv

    path.parent.mkdir(parents=True, exist_ok=True)
    store = dv.EventStore()
    for t, x, y, p in zip(rec.t.tolist(), rec.x.tolist(), rec.y.tolist(), rec.p.tolist(), strict=True):
        store.push_back(t, x, y, p)
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig("DVS128", (128, 128)))
    writer.writeEvents(store)
    del writer  # the file is finalised when the writer is destroyed
    return path


@pytest.fixture(scope="session")
def dvs_recordings() -> list[DVSRecording]:
    return make_dvs_recordings(per_class=10, seed=3)


@pytest.fixture(scope="session")
def dvs_archives(tmp_path_factory: pytest.TempPathFactory, dvs_recordings: list[DVSRecording]) -> Path:
    """A folder with ``<class>.zip`` (holding ``<class>/*.aedat4``) and ``CIFAR10DVS.zip`` holding those."""
    pytest.importorskip("dv_processing", reason="dv-processing (test extra) writes the AEDAT4 test files")
    pytest.importorskip("aedat", reason="tonic reads AEDAT4 through the aedat package")
    work = tmp_path_factory.mktemp("cifar_src")
    for rec in dvs_recordings:
        write_aedat4(work / CIFAR_CLASSES[rec.label] / rec.name, rec)
    archives = tmp_path_factory.mktemp("cifar_archives")
    for cls in CIFAR_CLASSES:
        with zipfile.ZipFile(archives / f"{cls}.zip", "w") as zipped:
            for file in sorted((work / cls).iterdir()):
                zipped.write(file, f"{cls}/{file.name}")
    with zipfile.ZipFile(archives / "CIFAR10DVS.zip", "w") as zipped:
        for cls in CIFAR_CLASSES:
            zipped.write(archives / f"{cls}.zip", f"{cls}.zip")
    return archives


@pytest.fixture()
def cifar_root(tmp_path: Path, dvs_archives: Path) -> Iterator[Path]:
    """``<root>/CIFAR10DVS/<class>/*.aedat4`` extracted by hand, without any archive."""
    folder = tmp_path / "CIFAR10DVS"
    folder.mkdir()
    for cls in CIFAR_CLASSES:
        with zipfile.ZipFile(dvs_archives / f"{cls}.zip") as zipped:
            zipped.extractall(folder)
    yield tmp_path
