"""Exact resume: a run killed anywhere and resumed ends with the same weights as an uninterrupted run (CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from _training_data import tiny_config

from snnkit.training import CheckpointError, Trainer, read_jsonl, resume, train
from snnkit.training.loop import TrainResult

HERE = Path(__file__).parent


class Killed(Exception):
    """Raised by a callback to stop a run abruptly after a given number of batches."""


def kill_after(global_step: int):
    def callback(trainer: Trainer) -> None:
        if trainer.global_step == global_step:
            raise Killed(f"killed after batch {global_step}")

    return callback


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs"


def comparable(records: list[dict]) -> list[dict]:
    # Wall-clock fields differ between runs; everything computed from data and weights must not.
    drop = {"time", "train_seconds", "spikes_per_s"}
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.fixture(scope="module")
def reference(bundle, tmp_path_factory) -> TrainResult:
    """The uninterrupted run every resumed run is compared with."""
    cfg = tiny_config(str(tmp_path_factory.mktemp("ref")), "run")
    return train(cfg, data=bundle, progress=False)


# 8 batches per epoch. Kill points: mid-epoch right after a checkpoint (4), mid-epoch between checkpoints (5: resume
# redoes batch 5 from the checkpoint at 4), on the last batch of epoch 1 (8: resumes from the checkpoint at 6), and
# inside epoch 2 (13).
@pytest.mark.parametrize("kill_at", [4, 5, 8, 13])
def test_resume_after_kill_equals_uninterrupted(bundle, cfg, reference, kill_at: int) -> None:
    with pytest.raises(Killed):
        train(cfg, data=bundle, callbacks=[kill_after(kill_at)], progress=False)
    run_dir = Path(cfg.out) / cfg.name
    resumed = resume(run_dir, data=bundle, progress=False)
    assert resumed.epochs == 2
    assert_same_weights(resumed.model, reference.model)
    assert comparable(read_jsonl(run_dir / "metrics.jsonl")) == comparable(reference.history)
    assert resumed.test_acc == reference.test_acc


def test_resume_with_worker_processes_equals_uninterrupted(bundle, cfg, reference) -> None:
    """Loader workers (here 2, resumed with 1) change nothing: order and RNG never depend on them."""
    cfg = replace(cfg, workers=2)
    with pytest.raises(Killed):
        train(cfg, data=bundle, callbacks=[kill_after(11)], progress=False)
    resumed = resume(Path(cfg.out) / cfg.name, data=bundle, overrides={"workers": 1}, progress=False)
    assert_same_weights(resumed.model, reference.model)


def test_resume_twice_and_resume_finished_run(bundle, cfg, reference) -> None:
    with pytest.raises(Killed):
        train(cfg, data=bundle, callbacks=[kill_after(3)], progress=False)
    run_dir = Path(cfg.out) / cfg.name
    with pytest.raises(Killed):
        resume(run_dir, data=bundle, callbacks=[kill_after(11)], progress=False)
    resumed = resume(run_dir, data=bundle, progress=False)
    assert_same_weights(resumed.model, reference.model)
    # Resuming a finished run trains nothing more and reports the same result.
    again = resume(run_dir, data=bundle, progress=False)
    assert again.test_acc == reference.test_acc
    assert_same_weights(again.model, reference.model)
    assert len(read_jsonl(run_dir / "metrics.jsonl")) == 2


def test_hard_kill_in_subprocess_then_resume(bundle, cfg, reference) -> None:
    """SIGKILL (no cleanup at all) in the middle of epoch 2, then resume in this process."""
    run_dir = Path(cfg.out) / cfg.name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           # bit-identical weights need the same intra-op thread count on both sides (float sums are split by it)
           "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.run(
        [sys.executable, str(HERE / "_kill_worker.py"), cfg.out, cfg.name, "11"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (run_dir / "checkpoint.pt").is_file()
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    resumed = resume(run_dir, data=bundle, progress=False)
    assert_same_weights(resumed.model, reference.model)


def test_resume_dir_without_checkpoint_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no checkpoint"):
        resume(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="has no checkpoint"):
        resume(tmp_path / "does-not-exist")


def test_checkpoint_of_another_model_is_refused(bundle, cfg) -> None:
    with pytest.raises(Killed):
        train(cfg, data=bundle, callbacks=[kill_after(3)], progress=False)
    path = Path(cfg.out) / cfg.name / "checkpoint.pt"
    other = replace(cfg, model_kwargs={"hidden": [32], "dropout": 0.3})
    trainer = Trainer.from_config(other, bundle, progress=False)
    with pytest.raises(CheckpointError) as e:
        trainer.load(path)
    assert str(path) in str(e.value) and "does not match model 'mlp'" in str(e.value)
    assert "features.0.weight" in str(e.value)
    vgg = replace(cfg, model="vgg", model_kwargs={"cfg": [4, "M"]})
    from torch.utils.data import TensorDataset

    from snnkit.training import DataBundle

    frames = TensorDataset(torch.zeros(4, 3, 2, 8, 8), torch.zeros(4, dtype=torch.long))
    trainer = Trainer.from_config(vgg, DataBundle(frames, frames, (2, 8, 8), 3), progress=False)
    with pytest.raises(CheckpointError, match="checkpoint is for model 'mlp', not 'vgg'"):
        trainer.load(path)


def test_resume_refuses_changed_batches_per_epoch(bundle, cfg) -> None:
    with pytest.raises(Killed):
        train(cfg, data=bundle, callbacks=[kill_after(3)], progress=False)
    path = Path(cfg.out) / cfg.name / "checkpoint.pt"
    trainer = Trainer.from_config(replace(cfg, batch_size=16), bundle, progress=False)
    with pytest.raises(CheckpointError, match="batches per epoch"):
        trainer.load(path)


def test_resume_rejects_result_changing_overrides(bundle, cfg) -> None:
    with pytest.raises(Killed):
        train(cfg, data=bundle, callbacks=[kill_after(3)], progress=False)
    with pytest.raises(ValueError, match="can only override"):
        resume(Path(cfg.out) / cfg.name, data=bundle, overrides={"lr": 1.0}, progress=False)


@pytest.mark.parametrize("key", ["optimizers", "rng", "history"])
def test_checkpoint_lacking_a_key_is_refused_naming_it(bundle, cfg, key: str) -> None:
    """A checkpoint that passes its checksum but lacks an entry (another writer, an edited file): one clear error."""
    from snnkit.training import load_checkpoint, save_checkpoint

    with pytest.raises(Killed):
        train(cfg, data=bundle, callbacks=[kill_after(3)], progress=False)
    path = Path(cfg.out) / cfg.name / "checkpoint.pt"
    payload = load_checkpoint(path)
    del payload[key]
    for meta in ("format", "version"):
        payload.pop(meta)
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError) as e:
        resume(path.parent, data=bundle, progress=False)
    assert str(path) in str(e.value) and repr(key) in str(e.value)
