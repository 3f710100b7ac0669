"""The bundled spoken-digits dataset: found in a checkout and in a wheel, 20 classes, speaker-disjoint splits."""

from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest

import snnkit
from snnkit import data

BUNDLED = data.bundled_dir() / "spoken_digits"
FILES = [BUNDLED / f"spoken_digits_{split}.h5" for split in ("train", "test")]


def test_bundled_dir_in_a_checkout_is_the_repository_datasets_folder():
    if (Path(snnkit.__file__).resolve().parent / "_bundled").is_dir():
        pytest.skip("snnkit is installed from a wheel here")
    assert data.bundled_dir() == Path(snnkit.__file__).resolve().parent.parent / "datasets"
    assert (data.bundled_dir() / "README.md").is_file()


def test_bundled_dir_in_a_wheel_is_the_package_data_folder(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "snnkit"
    (package / "_bundled" / "spoken_digits").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.setattr(snnkit, "__file__", str(package / "__init__.py"))
    assert data.bundled_dir() == package / "_bundled"


def test_bundled_spoken_digits_have_20_classes_and_disjoint_speakers(no_network):
    assert all(f.is_file() for f in FILES), f"bundled files missing (they are committed): {FILES}"
    train = data.SpokenDigits("train")
    test = data.SpokenDigits(split="test", dt_ms=10, channel_pool=5)
    assert train.num_classes == 20 and len(train.classes) == 20
    assert set(np.unique(train.labels)) == set(range(20))
    assert set(np.unique(test.labels)) <= set(range(20))
    assert len(train) > 0 and len(test) > 0
    assert set(train.speakers.tolist()).isdisjoint(test.speakers.tolist())
    frames, label = train[0]
    assert frames.ndim == 2 and frames.shape[1] == 140 and 0 <= label < 20
    x, y = next(iter(data.loader(test, batch_size=8)))
    assert x.shape[1:] == (min(8, len(test)), 140) and y.shape[0] == x.shape[1]
    assert no_network == []


# Attribute order of the generator's main(): HDF5 stores attributes in creation order, which changes the bytes.
_GENERATOR_ATTRS = ("description", "generator", "command", "seed", "espeak_ng_version", "cochlea_config", "licence")


@pytest.mark.parametrize("split", ["train", "test"])
def test_generator_writes_the_bundled_files_byte_for_byte(split, tmp_path, monkeypatch):
    """The generator's HDF5 writer, given the spikes of a bundled file, rewrites that file exactly (so a change in
    how it writes, e.g. through the atomic-write helper, cannot silently alter the bundled data)."""
    pytest.importorskip("scipy")
    import h5py

    script = Path(__file__).resolve().parents[2] / "scripts" / "make_spoken_digits.py"
    if not script.is_file():
        pytest.skip("not a source checkout")
    spec = importlib.util.spec_from_file_location("make_spoken_digits", script)
    generator = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, generator)  # its dataclasses look their module up there
    spec.loader.exec_module(generator)

    bundled = BUNDLED / f"spoken_digits_{split}.h5"
    with h5py.File(bundled, "r") as file:
        attrs = {key: file.attrs[key] for key in _GENERATOR_ATTRS}
        columns = (file["spikes/times"][()], file["spikes/units"][()], file["labels"][()], file["extra/speaker"][()])
    samples = [(t, u, int(label), int(speaker)) for t, u, label, speaker in zip(*columns, strict=True)]
    args = generator.parse_args(shlex.split(str(attrs["command"]))[2:])
    speakers = generator.make_speakers(args.n_speakers, args.test_fraction, args.seed)
    attrs = {key: str(value) if isinstance(value, str) else value for key, value in attrs.items()}
    attrs["seed"] = int(attrs["seed"])
    out = tmp_path / bundled.name
    generator.write_shd_file(out, samples, speakers, {**attrs, "split": split})
    assert out.read_bytes() == bundled.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [bundled.name]  # no temporary left beside it
