"""The binned-frame store (snnkit.data.store): equal to the tonic path sample by sample, rebuilt exactly when its
inputs change, safe against killed and concurrent builds and full disks, and bit-identical for training."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from snnkit import data
from snnkit.data import store as store_module
from snnkit.data.store import FrameStore, build_store

REPO = Path(__file__).resolve().parents[2]


def stores(cache: Path) -> list[Path]:
    return sorted(cache.rglob("frames.store"))


def temporaries(cache: Path) -> list[Path]:
    return sorted(cache.rglob(".frames*.tmp"))


def assert_same_items(stored: torch.utils.data.Dataset, plain: torch.utils.data.Dataset) -> None:
    assert len(stored) == len(plain)
    for i in range(len(plain)):
        (a, la), (b, lb) = plain[i], stored[i]
        assert la == lb, f"label of sample {i}"
        assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape, f"sample {i}: {a.shape} vs {b.shape}"
        assert torch.equal(a, b), f"frames of sample {i}"


def assert_same_batches(stored, plain, batch_size: int = 7, **kwargs) -> None:
    ours = list(data.loader(stored, batch_size, shuffle=True, seed=3, return_lengths=True, **kwargs))
    theirs = list(data.loader(plain, batch_size, shuffle=True, seed=3, return_lengths=True))
    assert len(ours) == len(theirs)
    for (x1, y1, n1), (x2, y2, n2) in zip(ours, theirs, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(n1, n2)


# ------------------------------------------------------------------------------------- equal to the tonic path
@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_shd_store_equals_tonic(shd_root: Path, mode: str) -> None:
    cache = shd_root / "cache"
    for split in ("train", "test"):
        plain = data.SHD(shd_root, split)
        stored = data.SHD(shd_root, split, store=mode)
        assert stored.store is not None and stored.store.path.parent.parent.parent == cache
        assert_same_items(stored, plain)
        assert_same_batches(stored, plain)
    assert len(stores(cache)) == 2 and not temporaries(cache)


def test_ssc_store_equals_tonic(tmp_path: Path, formats) -> None:
    samples = formats.make_hsd_samples(15, 35, seed=7, empty=(2,))
    formats.write_hsd(tmp_path / "SSC" / "ssc_valid.h5", samples, 35)
    plain = data.SSC(tmp_path, "valid", dt_ms=4, channel_pool=2)
    stored = data.SSC(tmp_path, "valid", dt_ms=4, channel_pool=2, store="disk", store_workers=2)
    assert_same_items(stored, plain)
    assert_same_batches(stored, plain, device="cpu")
    assert_same_batches(stored, plain, num_workers=2)  # batches gathered in loader worker processes


def test_spoken_digits_store_equals_tonic(tmp_path: Path) -> None:
    plain = data.SpokenDigits("test")
    stored = data.SpokenDigits("test", store="memory", cache_dir=tmp_path)
    assert_same_items(stored, plain)
    assert_same_batches(stored, plain, batch_size=64, device="cpu")
    # counts are small whole numbers: one byte each
    assert stored.store is not None and stored.store.header["arrays"]["values"]["dtype"] == "|u1"


@pytest.mark.parametrize("frame_mode", ["count", "binary"])
def test_cifar10dvs_store_equals_tonic(cifar_root: Path, frame_mode: str) -> None:
    kwargs = {"time_steps": 4, "size": 16, "frame_mode": frame_mode, "cache": False}
    plain = data.CIFAR10DVS(cifar_root, "test", **kwargs)
    stored = data.CIFAR10DVS(cifar_root, "test", store="memory", **kwargs)
    assert_same_items(stored, plain)
    assert_same_batches(stored, plain, batch_size=4)
    # averaged counts are fractions (float32); binary frames are whole numbers (uint8)
    expected = "<f4" if frame_mode == "count" else "|u1"
    assert stored.store is not None and stored.store.header["arrays"]["values"]["dtype"] == expected
    # one store serves both splits
    train = data.CIFAR10DVS(cifar_root, "train", store="disk", **kwargs)
    assert train.store is not None and train.store.path == stored.store.path
    assert_same_items(train, data.CIFAR10DVS(cifar_root, "train", **kwargs))


@pytest.mark.parametrize("layout", ["dense", "sparse"])
def test_both_layouts_and_wide_values(tmp_path: Path, layout: str) -> None:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(9):
        frames = rng.integers(0, 3, (1 + i * 3 % 7, 2, 3)).astype(np.float32)
        frames[0, 0, 0] = 40_000 if i == 4 else frames[0, 0, 0]  # needs int32
        samples.append((frames, i % 3))
    build_store(tmp_path / "s.store", samples, len(samples), {"k": 1}, layout=layout)
    for mode in ("memory", "disk"):
        store = FrameStore.open(tmp_path / "s.store", mode)
        assert store.layout == layout and store.header["arrays"]["values"]["dtype"] == "<i4"
        for i, (frames, label) in enumerate(samples):
            got, got_label = store.sample(i)
            assert got_label == label and torch.equal(got, torch.from_numpy(frames))
        order = [8, 0, 4, 4, -1]
        x, y, lengths = store.batch(order)
        expected = data.pad_collate([(torch.from_numpy(samples[i][0]), samples[i][1]) for i in order])
        assert torch.equal(x, expected[0]) and torch.equal(y, expected[1])
        assert lengths.tolist() == [len(samples[i][0]) for i in order]
        # the torch gather (what a store on a GPU runs) gives the same batch
        tx, ty, tlengths = store._gather_torch(torch.tensor(order) % len(store))
        assert torch.equal(tx.view_as(x), x) and torch.equal(ty, y) and torch.equal(tlengths, lengths)


# ----------------------------------------------------------------------------------------------- rebuilding
def test_rebuilt_exactly_when_parameters_or_source_change(shd_root: Path, formats) -> None:
    cache = shd_root / "cache"
    first = data.SHD(shd_root, "test", store="disk").store
    assert first is not None
    built = first.path.stat().st_mtime_ns
    again = data.SHD(shd_root, "test", store="memory").store
    assert again is not None and again.path == first.path and first.path.stat().st_mtime_ns == built
    assert data.SHD(shd_root, "test", dt_ms=5, store="disk").store.path != first.path
    assert data.SHD(shd_root, "test", channel_pool=7, store="disk").store.path != first.path
    assert len(stores(cache)) == 3
    # the source file changes: new mtime (same size), then new content
    source = shd_root / "SHD" / "shd_test.h5"
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    other_split = data.SHD(shd_root, "train", store="disk").store.path
    before = first.sample(0)
    touched = data.SHD(shd_root, "test", store="disk")
    # The new build removes the three stores of the old file (whatever their parameters: nothing can read them
    # again); the other split's store, built from another file, stays. A store still open keeps working.
    assert touched.store.path != first.path and stores(cache) == sorted([touched.store.path, other_split])
    assert not first.path.exists()
    assert torch.equal(first.sample(0)[0], before[0])
    formats.write_hsd(source, formats.make_hsd_samples(6, 20, seed=11), 20)
    rewritten = data.SHD(shd_root, "test", store="disk")
    assert len(rewritten) == 6 and stores(cache) == sorted([rewritten.store.path, other_split])
    assert_same_items(rewritten, data.SHD(shd_root, "test"))


def test_cifar10dvs_size_change_rebuilds(cifar_root: Path) -> None:
    kwargs = {"time_steps": 2, "store": "disk"}  # cache=True by default: the store replaces it
    a = data.CIFAR10DVS(cifar_root, "test", size=8, **kwargs)
    b = data.CIFAR10DVS(cifar_root, "test", size=4, **kwargs)
    assert a.store.path != b.store.path and a[0][0].shape == (2, 2, 8, 8) and b[0][0].shape == (2, 2, 4, 4)
    assert not list((cifar_root / "cache").rglob("*.hdf5"))  # no per-recording cache written beside the store


# --------------------------------------------------------------------------------------------------- safety
_SLOW_BUILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from snnkit import data
    from snnkit.data import store

    root, marker, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    original = store.iterate_samples

    def slow(dataset, workers=0):
        print("BUILDING", flush=True)
        for i, sample in enumerate(original(dataset, workers)):
            if i == 3:
                marker.write_text("started")
            time.sleep(delay)
            yield sample

    store.iterate_samples = slow
    data.audio.iterate_samples = slow
    ds = data.SHD(root, "train", store="disk")
    print("DONE", ds.store.path, flush=True)
    """
)


def _start(script: Path, root: Path, marker: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(root), str(marker), str(delay)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def test_killed_build_is_never_read_and_a_restart_completes(shd_root: Path, tmp_path: Path) -> None:
    script = tmp_path / "build.py"
    script.write_text(_SLOW_BUILD)
    marker = tmp_path / "marker"
    proc = _start(script, shd_root, marker, 0.5)
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = shd_root / "cache"
    assert not stores(cache) and temporaries(cache)  # half-written, and never under the final name
    stored = data.SHD(shd_root, "train", store="disk")
    assert_same_items(stored, data.SHD(shd_root, "train"))
    assert len(stores(cache)) == 1 and not temporaries(cache)  # the dead build's scratch files are gone


def test_failure_between_writing_and_renaming_leaves_nothing(shd_root: Path, monkeypatch) -> None:
    def interrupted(src, dst):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(store_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.SHD(shd_root, "test", store="memory")
    cache = shd_root / "cache"
    assert not stores(cache) and not temporaries(cache)
    monkeypatch.undo()
    assert_same_items(data.SHD(shd_root, "test", store="memory"), data.SHD(shd_root, "test"))


def test_two_concurrent_builds_end_with_one_correct_store(shd_root: Path, tmp_path: Path) -> None:
    script = tmp_path / "build.py"
    script.write_text(_SLOW_BUILD)
    procs = [_start(script, shd_root, tmp_path / f"marker{k}", 0.02) for k in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sum(out.count("BUILDING") for out, _ in outputs) == 1  # the second waited and opened the first's store
    paths = {out.split("DONE", 1)[1].strip() for out, _ in outputs}
    cache = shd_root / "cache"
    assert len(paths) == 1 and stores(cache) == [Path(paths.pop())] and not temporaries(cache)
    assert_same_items(data.SHD(shd_root, "train", store="memory"), data.SHD(shd_root, "train"))


def test_full_disk_gives_a_clear_error_and_tonic_still_works(shd_root: Path, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "_convert", full)
    with pytest.raises(data.StoreBuildError, match=r"frames\.store.*No space left.*without store="):
        data.SHD(shd_root, "test", store="disk")
    cache = shd_root / "cache"
    assert not stores(cache) and not temporaries(cache)
    plain = data.SHD(shd_root, "test")
    assert len(plain) == 10 and plain[0][0].shape[1] == 140


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_arguments_name_themselves(shd_root: Path) -> None:
    with pytest.raises(ValueError, match="store must be one of 'memory', 'disk', got 'ram'"):
        data.SHD(shd_root, "test", store="ram")
    with pytest.raises(ValueError, match="store_workers must be >= 0"):
        data.SHD(shd_root, "test", store="disk", store_workers=-1)
    with pytest.raises(ValueError, match="store='memory' needs cache_dir"):
        data.SpokenDigits("test", store="memory")
    from snnkit.training.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="store: must be one of memory, disk, got 'ram'"):
        TrainConfig(store="ram")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "header"])
def test_corrupt_store_file_is_named(shd_root: Path, damage: str) -> None:
    path = data.SHD(shd_root, "test", store="disk").store.path
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a store at all" * 10)
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) - 100])
    else:
        path.write_bytes(raw[:20] + b"{broken" + raw[27:])
    with pytest.raises(data.CorruptDatasetError, match=rf"{path}.*delete it"):
        data.SHD(shd_root, "test", store="memory")
    path.unlink()
    assert_same_items(data.SHD(shd_root, "test", store="memory"), data.SHD(shd_root, "test"))


def test_out_of_range_indices(tmp_path: Path) -> None:
    stored = data.SpokenDigits("test", store="memory", cache_dir=tmp_path)
    with pytest.raises(IndexError):
        stored[len(stored)]
    with pytest.raises(IndexError, match="out of range"):
        stored.__getitems__([0, len(stored)])


# ------------------------------------------------------------------------------------------------- training
def test_training_on_the_store_is_bit_identical(tmp_path: Path) -> None:
    from snnkit.training import TrainConfig, train

    results = {}
    for store in (None, "memory", "disk"):
        cfg = TrainConfig(
            dataset="spoken-digits", root=str(tmp_path / "data"), store=store, model_kwargs={"hidden": [64]},
            epochs=2, batch_size=32, max_train_batches=4, device="cpu", seed=5, out=str(tmp_path / "runs"),
            name=f"run-{store}", plot_every=0, ckpt_every=0,
        )
        results[store] = train(cfg, progress=False)
    reference = results[None].model.state_dict()
    for store in ("memory", "disk"):
        weights = results[store].model.state_dict()
        assert weights.keys() == reference.keys()
        for name, value in reference.items():
            assert torch.equal(weights[name], value), f"{store}: {name}"
        assert results[store].test_loss == results[None].test_loss
    assert len(stores(tmp_path / "data" / "cache")) == 2  # train and test split


def test_loader_device_argument(tmp_path: Path) -> None:
    stored = data.SpokenDigits("test", store="memory", cache_dir=tmp_path)
    plain = data.SpokenDigits("test")
    x, _ = next(iter(data.loader(plain, 16, device="cpu")))
    assert x.device.type == "cpu" and torch.equal(x, next(iter(data.loader(stored, 16)))[0])
    assert stored.store is not None and stored.store.to("cpu") is stored.store
    with pytest.raises(ValueError, match="num_workers=0"):
        data.loader(stored, 16, num_workers=1, device="meta")


# ---------------------------------------------------------------------------------------- batch augmentations
def test_augmentations_on_store_batches(tmp_path: Path) -> None:
    from snnkit.data import augment

    stored = data.SpokenDigits("test", store="memory", cache_dir=tmp_path)
    x, _, lengths = stored.store.batch(range(12))

    def gen(seed: int) -> torch.Generator:
        return torch.Generator(x.device).manual_seed(seed)

    # repeatable from the generator's seed, different for another seed
    crop, crop_len = augment.random_crop(x, lengths, 20, gen(1))
    again, _ = augment.random_crop(x, lengths, 20, gen(1))
    assert crop.shape == (20, 12, 140) and torch.equal(crop, again)
    assert not torch.equal(crop, augment.random_crop(x, lengths, 20, gen(2))[0])
    for b in range(12):  # each crop is a window of the sample's own frames
        n = int(crop_len[b])
        assert 1 <= n <= 20
        windows = [x[s : s + n, b] for s in range(int(lengths[b]) - n + 1)]
        assert any(torch.equal(crop[:n, b], w) for w in windows) and not crop[n:, b].any()

    jittered, jit_len = augment.time_jitter(x, lengths, 0, gen(3))
    assert torch.equal(jittered, x) and torch.equal(jit_len, lengths)
    jittered, jit_len = augment.time_jitter(x, lengths, 3, gen(3))
    assert jittered.shape == x.shape and torch.equal(jittered, augment.time_jitter(x, lengths, 3, gen(3))[0])
    for b in range(12):
        shifts = [s for s in range(-3, 4) if torch.equal(jittered[:, b], torch.roll(x[:, b], s, 0) * _window(x, s))]
        assert shifts, f"sample {b} is not a shifted copy"

    dropped = augment.channel_dropout(x, 0.5, gen(4))
    silenced = (dropped == 0).all(dim=0)  # [B, C]: whole channels, at every step
    assert (silenced & (x != 0).any(dim=0)).any()  # some channels with spikes were dropped
    assert torch.equal(dropped[:, ~silenced], x[:, ~silenced])  # the others are untouched
    assert torch.equal(augment.channel_dropout(x, 0.0, gen(4)), x)

    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        augment.random_crop(x, lengths, 0, gen(0))
    with pytest.raises(ValueError, match="p must be a number in"):
        augment.channel_dropout(x, 1.0, gen(0))
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        augment.time_jitter(x, lengths, 2, 0)
    with pytest.raises(ValueError, match="lengths must be"):
        augment.time_jitter(x, lengths[:3], 2, gen(0))


def _window(x: torch.Tensor, shift: int) -> torch.Tensor:
    """1 where a frame rolled by ``shift`` is a real shifted frame, 0 where it wrapped around."""
    t = torch.arange(x.shape[0])
    keep = ((t - shift) >= 0) & ((t - shift) < x.shape[0])
    return keep.view(-1, 1).float()


def test_training_loader_gathers_a_stored_dataset_on_the_run_device(tmp_path: Path) -> None:
    """The loop hands its device to a stored dataset's loader (workers=0), so batches are gathered where the model
    is; other datasets, and stored ones behind worker processes, keep the per-batch copy of the loop."""
    from snnkit.training.batches import EvalBatches, TrainBatches

    cpu = torch.device("cpu")
    stored = data.SpokenDigits("test", store="memory", cache_dir=tmp_path)
    plain = data.SpokenDigits("test")
    on_device = TrainBatches(stored, 16, seed=0, device=cpu).loader.dataset
    assert on_device is not stored and on_device.store.device == cpu  # a copy, its store moved there (a no-op here)
    assert EvalBatches(stored, 16, device=cpu).loader.dataset is not stored
    assert TrainBatches(plain, 16, seed=0, device=cpu).loader.dataset is plain
    assert TrainBatches(stored, 16, seed=0, workers=1, device=cpu).loader.dataset is stored
    x, y = next(iter(TrainBatches(stored, 16, seed=0, device=cpu).loader))
    x_ref, y_ref = next(iter(TrainBatches(plain, 16, seed=0, device=cpu).loader))
    assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
