"""``snnkit train`` argument handling: clear one-line errors, never a traceback, for bad input."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from snnkit import cli
from snnkit.training import BPTT, Callback, TrainConfig, methods
from snnkit.training import train as _train
from snnkit.training.config import ConfigError


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        cli.main(["train", *args])
    err = capsys.readouterr().err
    code = e.value.code
    return (code if isinstance(code, int) else 1), (err + (code if isinstance(code, str) else ""))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mnist"], "invalid choice: 'mnist'"),
        (["--model", "resnet"], "unknown model 'resnet'; valid: delay-snn, mlp, vgg"),
        (["--batch-size", "0"], "--batch-size: must be a positive integer, got 0"),
        (["--batch-size", "-3"], "must be a positive integer, got -3"),
        (["--epochs", "0"], "--epochs: must be a positive integer, got 0"),
        (["--epochs", "two"], "must be a positive integer, got 'two'"),
        (["--lr", "-1"], "--lr: must be a positive number"),
        (["--workers", "-1"], "--workers: must be an integer >= 0"),
    ],
)
def test_bad_arguments_give_argparse_errors(args: list[str], message: str, capsys) -> None:
    code, err = run_cli(args, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_resume_without_checkpoint(tmp_path: Path, capsys) -> None:
    (tmp_path / "run").mkdir()
    code, err = run_cli(["--resume", str(tmp_path / "run")], capsys)
    assert code != 0 and "has no checkpoint" in err and str(tmp_path / "run") in err


def test_resume_with_corrupt_checkpoint(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"SNNKITCKPT1\n" + b"\0" * 10)
    code, err = run_cli(["--resume", str(run)], capsys)
    assert code != 0 and "truncated" in err and str(run / "checkpoint.pt") in err


def test_missing_dataset_files_give_one_line_error(tmp_path: Path, capsys) -> None:
    code, err = run_cli(["--dataset", "shd", "--root", str(tmp_path), "--epochs", "1"], capsys)
    assert code != 0 and "snnkit train: error:" in err and "Traceback" not in err
    assert "shd_train.h5" in err and "--download" in err


def test_download_flag_reaches_tonic_and_fails_cleanly_offline(tmp_path: Path, capsys, monkeypatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    code, err = run_cli(["--dataset", "shd", "--root", str(tmp_path), "--download", "--epochs", "1"], capsys)
    assert code != 0 and "download of https://zenkelab.org/datasets/shd_train.h5.zip" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("device", "message"), [("bogus", "invalid device 'bogus'"), ("cuda:7", "not available")])
def test_bad_device(device: str, message: str, tmp_path: Path, capsys, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, err = run_cli(["--device", device, "--out", str(tmp_path), "--epochs", "1"], capsys)
    assert code != 0 and message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written for a run that cannot start


def test_list_models(capsys) -> None:
    assert cli.main(["train", "--list-models"]) == 0
    assert capsys.readouterr().out.split() == ["delay-snn", "mlp", "vgg"]


def test_python_dash_m_and_script_entry_points() -> None:
    root = Path(__file__).resolve().parents[2]
    for cmd in (
        [sys.executable, "-m", "snnkit", "train", "--help"],
        [sys.executable, str(root / "scripts" / "train.py"), "--help"],
    ):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=root)
        assert out.returncode == 0, out.stderr
        assert "--resume" in out.stdout and "--dataset" in out.stdout


def test_train_then_resume_finished_run_prints_final_accuracy(tmp_path: Path, capsys) -> None:
    args = ["train", "--epochs", "1", "--out", str(tmp_path), "--name", "r", "--no-progress", "--device", "cpu"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "Final test accuracy:" in out and f"Run directory: {tmp_path / 'r'}" in out
    # Resuming a finished run reports the same result; flags that would change the run are ignored, with a note.
    assert cli.main(["train", "--resume", str(tmp_path / "r"), "--epochs", "5", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "ignoring --epochs" in captured.err
    acc_line = [line for line in out.splitlines() if line.startswith("Final test accuracy")][0]
    assert acc_line.split("(")[0] in captured.out


# ------------------------------------------------------------------------------------ flags built from TrainConfig
class _WithK(BPTT):
    """A training method with a constructor argument (as SLTT-K has)."""

    name = "with-k"

    def __init__(self, k: int = 1) -> None:
        self.k = k


@pytest.fixture
def method_with_k(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register "with-k" in the method table for one test (the table is a dict or a Registry)."""
    table = methods.METHODS
    if isinstance(table, dict):
        monkeypatch.setitem(table, "with-k", _WithK)
    else:
        monkeypatch.setattr(table, "_entries", {**table._entries, "with-k": _WithK})


#: For every TrainConfig field: flags that set it to a non-default value (where one exists), and that value.
FIELD_EXAMPLES: dict[str, tuple[list[str], object]] = {
    "dataset": (["--dataset", "shd"], "shd"),
    "root": (["--root", "/data/snn"], "/data/snn"),
    "download": (["--download"], True),
    "model": (["--model", "vgg"], "vgg"),
    "model_kwargs": (
        ["--model-arg", "width=512", "--model-arg", "hidden=[128, 128]", "--model-arg", "act=relu"],
        {"width": 512, "hidden": [128, 128], "act": "relu"},
    ),
    "epochs": (["--epochs", "3"], 3),
    "batch_size": (["--batch-size", "5"], 5),
    "lr": (["--lr", "0.5"], 0.5),
    "weight_decay": (["--weight-decay", "0"], 0.0),
    "scheduler": (["--scheduler", "none"], "none"),
    "method": (["--method", "with-k"], "with-k"),
    "method_args": (["--method", "with-k", "--method-arg", "k=2"], {"k": 2}),
    "grad_clip": (["--grad-clip", "1.5"], 1.5),
    "seed": (["--seed", str(2**63 - 1)], 2**63 - 1),
    "device": (["--device", "cpu"], "cpu"),
    "amp": (["--amp"], True),
    "workers": (["--workers", "2"], 2),
    "time_steps": (["--time-steps", "16"], 16),
    "size": (["--size", "32"], 32),
    "dt_ms": (["--dt-ms", "5"], 5.0),
    "store": (["--store", "memory"], "memory"),
    "crop": (["--crop", "50"], 50),
    "time_jitter": (["--time-jitter", "3"], 3),
    "channel_dropout": (["--channel-dropout", "0.1"], 0.1),
    "ckpt_every": (["--ckpt-every", "0"], 0),
    "plot_every": (["--plot-every", "0"], 0),
    "max_train_batches": (["--max-train-batches", "3"], 3),
    "out": (["--out", "elsewhere"], "elsewhere"),
    "name": (["--name", "r1"], "r1"),
}


def test_every_config_field_has_a_flag_that_reaches_the_config(method_with_k) -> None:
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert sorted(FIELD_EXAMPLES) == sorted(names), "add the new TrainConfig field to FIELD_EXAMPLES"
    default = TrainConfig()
    for name in names:
        args, expected = FIELD_EXAMPLES[name]
        assert getattr(default, name) != expected, f"{name}: the example must differ from the default"
        cfg = cli.train_config(args)
        assert getattr(cfg, name) == expected and type(getattr(cfg, name)) is type(expected), name


def test_every_config_field_has_help() -> None:
    parser = argparse.ArgumentParser()
    cli._add_train_args(parser)
    actions = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f"TrainConfig.{f.name} has no help text"
        assert actions[f.name].help.startswith(f.metadata["help"])  # the one text, shown by --help


def test_key_value_flags() -> None:
    cfg = cli.train_config(
        ["--model-arg", "hidden=(64,)", "--model-arg", "dropout=None", "--model-arg", "dropout=0.25",
         "--model-arg", "tag= a b "]
    )
    # Literals parse as Python (a tuple stays a tuple until the config is saved as JSON); a repeated key: later wins.
    assert cfg.model_kwargs == {"hidden": (64,), "dropout": 0.25, "tag": " a b "}
    assert TrainConfig().method_args == {} and TrainConfig().model_kwargs == {}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-arg", "width"], "argument --model-arg: expected KEY=VALUE, got 'width'"),
        (["--model-arg", "width="], "argument --model-arg: expected KEY=VALUE"),
        (["--model-arg", "hidden=[128,128"], "argument --model-arg: hidden: '[128,128' is not a valid Python literal"),
        (["--model-arg", "1x=3"], "argument --model-arg: keys must be Python identifiers"),
        (["--model-arg", "s={1, 2}"], "argument --model-arg: s={1, 2}: values must be JSON-serialisable"),
        (["--method-arg", "=2"], "argument --method-arg: expected KEY=VALUE"),
    ],
)
def test_malformed_key_value_is_an_argparse_error(args: list[str], message: str, capsys) -> None:
    code, err = run_cli(args, capsys)
    assert code == 2 and message in err and "Traceback" not in err


# ------------------------------------------------------------------------------------ validation before any write
@pytest.fixture
def no_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "inf"], "argument --lr: must be finite, got inf"),
        (["--lr", "nan"], "argument --lr: must be finite, got nan"),
        (["--lr", "0"], "argument --lr: must be a positive number, got 0.0"),
        (["--weight-decay", "inf"], "argument --weight-decay: must be finite, got inf"),
        (["--weight-decay=-1e-4"], "argument --weight-decay: must be a number >= 0, got -0.0001"),
        (["--grad-clip", "0"], "argument --grad-clip: must be a positive number, got 0.0"),
        (["--grad-clip=-inf"], "argument --grad-clip: must be finite, got -inf"),
        (["--dt-ms", "nan"], "argument --dt-ms: must be finite, got nan"),
        (["--seed", str(2**63)], f"argument --seed: must be an integer in [0, 2**63 - 1 = {2**63 - 1}], got {2**63}"),
        (["--seed", "-1"], "argument --seed: must be an integer in [0, 2**63 - 1"),
        (["--seed", "1.5"], "argument --seed: must be an integer in [0, 2**63 - 1"),
        (["--device", "foo"], "argument --device: invalid device 'foo'; accepted: auto, cpu, cuda, cuda:N, mps"),
        (["--device", "mps"], "argument --device: device 'mps' is not available: this machine has no Apple MPS"),
        (["--device", "cuda"], "argument --device: device 'cuda' is not available: this machine has no CUDA"),
        (["--device", "cuda:1"], "accepted here: auto, cpu"),
        (["--scheduler", "linear"], "argument --scheduler: invalid choice: 'linear' (unknown scheduler 'linear'"),
        (["--method", "nope"], "argument --method: invalid choice: 'nope' (unknown training method 'nope'; valid: "),
        (["--method-arg", "k=2"], "argument --method-arg: do not fit training method 'bptt'"),
        (["--name", "a/b"], "argument --name: must be a single directory name"),
        (["--time-steps", "0"], "argument --time-steps: must be a positive integer, got 0"),
        (["--max-train-batches", "-2"], "argument --max-train-batches: must be a positive integer, got -2"),
    ],
)
def test_bad_values_fail_before_anything_is_written(
    args: list[str], message: str, tmp_path: Path, capsys, no_accelerators
) -> None:
    code, err = run_cli([*args, "--out", str(tmp_path / "runs"), "--epochs", "1"], capsys)
    assert code == 2, err
    assert message in err, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("kwargs", "field", "problem"),
    [
        ({"lr": float("inf")}, "lr", "must be finite, got inf"),
        ({"weight_decay": float("nan")}, "weight_decay", "must be finite, got nan"),
        ({"grad_clip": 0.0}, "grad_clip", "must be a positive number"),
        ({"seed": 2**63}, "seed", "must be an integer in [0, 2**63 - 1"),
        ({"seed": -5}, "seed", "must be an integer in [0, 2**63 - 1"),
        ({"seed": True}, "seed", "must be an integer in"),
        ({"epochs": 2.0}, "epochs", "must be a positive integer, got 2.0"),
        ({"device": "mps"}, "device", "device 'mps' is not available"),
        ({"device": "tpu"}, "device", "invalid device 'tpu'"),
        ({"model": "resnet"}, "model", "unknown model 'resnet'; valid: delay-snn, mlp, vgg, or auto"),
        ({"scheduler": "step"}, "scheduler", "unknown scheduler 'step'; valid: cosine, none"),
        ({"method": "sltt-q"}, "method", "unknown training method 'sltt-q'"),
        ({"method_args": {"k": 2}}, "method_args", "do not fit training method 'bptt'"),
        ({"model_kwargs": {"for": 1}}, "model_kwargs", "keys must be Python identifiers"),
        ({"model_kwargs": [("a", 1)]}, "model_kwargs", "must be a dict of keyword arguments"),
        ({"name": ".."}, "name", "must be a single directory name"),
    ],
)
def test_config_validation_names_the_field(kwargs: dict, field: str, problem: str, no_accelerators) -> None:
    with pytest.raises(ConfigError) as e:
        TrainConfig(**kwargs)
    assert isinstance(e.value, ValueError) and e.value.field == field and problem in str(e.value)
    assert str(e.value).startswith(f"{field}: ")


def test_method_args_reach_the_config(method_with_k) -> None:
    assert TrainConfig(method="with-k", method_args={"k": 3}).method_args == {"k": 3}
    with pytest.raises(ConfigError, match="method_args: do not fit training method 'with-k'"):
        TrainConfig(method="with-k", method_args={"j": 3})


def test_resume_reports_a_saved_device_this_machine_lacks(tmp_path: Path, capsys, monkeypatch) -> None:
    assert cli.main(["train", "--epochs", "1", "--max-train-batches", "1", "--out", str(tmp_path), "--name", "r",
                     "--no-progress", "--device", "cpu", "--model-arg", "hidden=[16]"]) == 0
    capsys.readouterr()
    import torch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    from snnkit.training import load_checkpoint, save_checkpoint

    path = tmp_path / "r" / "checkpoint.pt"
    state = load_checkpoint(path)
    state["config"]["device"] = "mps"  # as if the run had been started on a Mac
    save_checkpoint(path, state)
    code, err = run_cli(["--resume", str(tmp_path / "r"), "--no-progress"], capsys)
    assert code != 0 and "device 'mps' is not available" in err and "override it with --device" in err
    assert cli.main(["train", "--resume", str(tmp_path / "r"), "--no-progress", "--device", "cpu"]) == 0


# ------------------------------------------------------------------------------------ a user's dataset by name
class _ToySpikes(TensorDataset):
    num_classes = 3


def test_train_on_a_registered_dataset_by_name(tmp_path: Path, capsys, monkeypatch) -> None:
    import torch

    from snnkit.data import DATASETS

    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))

    @DATASETS.register("toy-spikes")
    def _toy(split: str, settings) -> _ToySpikes:
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        y = torch.arange(24) % 3
        x = (torch.rand(24, settings.time_steps, 6, generator=g) < 0.1 + 0.3 * (y[:, None, None] == 1)).float()
        return _ToySpikes(x, y)

    args = ["train", "--dataset", "toy-spikes", "--time-steps", "5", "--epochs", "1", "--batch-size", "8",
            "--model-arg", "hidden=[16]", "--out", str(tmp_path), "--name", "toy", "--no-progress", "--device", "cpu"]
    assert cli.main(args) == 0
    assert "Final test accuracy:" in capsys.readouterr().out
    saved = json.loads((tmp_path / "toy" / "config.json").read_text())
    assert saved["dataset"] == "toy-spikes" and saved["model_kwargs"] == {"hidden": [16]}


# ------------------------------------------------------------------------------------ flags change what they should
# Tiny runs of `snnkit train` on the bundled spoken digits (1020 train, 260 test samples, about 70-95 bins of 10 ms).
# A recorder callback, passed in through snnkit.training.train (which the command calls), sees every batch.
class _Recorder(Callback):
    """Per training batch: input shape, output dtype, learning rate and gradient norm after the step."""

    def __init__(self) -> None:
        self.train_shapes: list[tuple[int, ...]] = []
        self.eval_shapes: list[tuple[int, ...]] = []
        self.out_dtypes: set[torch.dtype] = set()
        self.lrs: list[float] = []
        self.grad_norms: list[float] = []
        self.batches_per_epoch: dict[int, int] = {}

    def on_train_start(self, trainer) -> None:
        def before(module, args):
            (self.train_shapes if module.training else self.eval_shapes).append(tuple(args[0].shape))

        def after(module, args, out):
            self.out_dtypes.add(out.dtype)

        trainer.model.register_forward_pre_hook(before)
        trainer.model.register_forward_hook(after)

    def on_batch_end(self, trainer) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])
        grads = [p.grad.detach().flatten() for p in trainer.model.parameters() if p.grad is not None]
        self.grad_norms.append(torch.cat(grads).norm().item())
        self.batches_per_epoch[trainer.epoch] = self.batches_per_epoch.get(trainer.epoch, 0) + 1


def tiny_run(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, crop: bool = True
) -> tuple[_Recorder, Path]:
    """``snnkit train <args>`` in-process with a recorder; returns it and the run directory. With ``crop``, recordings
    are cut to 10 bins (unless ``args`` say otherwise: a later flag wins), so that evaluation takes little time."""
    import snnkit.training as training

    recorder = _Recorder()

    def train_with_recorder(cfg, **kwargs):
        return _train(cfg, callbacks=[*kwargs.pop("callbacks", ()), recorder], **kwargs)

    monkeypatch.setattr(training, "train", train_with_recorder)
    base = ["train", "--dataset", "spoken-digits", "--model-arg", "hidden=[16]", "--batch-size", "8",
            "--max-train-batches", "2", "--epochs", "1", "--device", "cpu", "--no-progress",
            "--plot-every", "0", "--out", str(tmp_path), "--name", "run", *(["--time-steps", "10"] if crop else [])]
    assert cli.main([*base, *args]) == 0
    return recorder, tmp_path / "run"


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


def test_time_steps_crops_audio_to_that_many_bins(tmp_path: Path, monkeypatch, capsys) -> None:
    recorder, run = tiny_run(["--time-steps", "7"], tmp_path, monkeypatch)
    assert recorder.train_shapes and recorder.eval_shapes
    # at most the first 7 bins of each recording, in training and evaluation; a batch of 8 recordings of 70-95 bins
    # has one with a spike in bin 7 (a single recording may be shorter: T ends at its last spike)
    assert {s[0] for s in recorder.train_shapes} == {7} and max(s[0] for s in recorder.eval_shapes) == 7
    assert all(s[0] <= 7 for s in recorder.eval_shapes)
    assert all(s[1:] == (8, 140) for s in recorder.train_shapes)
    assert json.loads((run / "config.json").read_text())["time_steps"] == 7


def test_whole_recordings_without_time_steps(tmp_path: Path, monkeypatch, capsys) -> None:
    recorder, _ = tiny_run([], tmp_path, monkeypatch, crop=False)
    assert min(s[0] for s in recorder.train_shapes) > 50  # the control: uncropped batches are 70-95 bins long


def test_max_train_batches_caps_each_epoch(tmp_path: Path, monkeypatch, capsys) -> None:
    recorder, run = tiny_run(["--max-train-batches", "3", "--epochs", "2"], tmp_path, monkeypatch)
    assert recorder.batches_per_epoch == {0: 3, 1: 3}
    records = _records(run)
    assert [r["samples"] for r in records] == [24, 24]  # 3 batches of 8, of 1020 training samples
    assert [r["global_step"] for r in records] == [3, 6]


def test_amp_on_cpu_prints_its_note_and_trains_in_float32(tmp_path: Path, monkeypatch, capsys) -> None:
    recorder, run = tiny_run(["--amp"], tmp_path, monkeypatch)
    captured = capsys.readouterr()
    assert "note: amp (bf16 autocast) applies on CUDA only; training in float32 on CPU" in captured.out + captured.err
    assert recorder.out_dtypes == {torch.float32}
    assert json.loads((run / "config.json").read_text())["amp"] is True
    # without the flag, no note
    recorder, _ = tiny_run([], tmp_path / "plain", monkeypatch)
    captured = capsys.readouterr()
    assert "note: amp" not in captured.out + captured.err


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_grad_clip_bounds_the_gradient_norm(clip: float | None, tmp_path: Path, monkeypatch, capsys) -> None:
    args = [] if clip is None else ["--grad-clip", str(clip)]
    recorder, run = tiny_run(args, tmp_path, monkeypatch)
    assert json.loads((run / "config.json").read_text())["grad_clip"] == clip
    assert len(recorder.grad_norms) == 2
    if clip is None:
        assert min(recorder.grad_norms) > 100 * 1e-3  # the control: unclipped gradients are far larger than 1e-3
    else:
        assert max(recorder.grad_norms) <= clip * (1 + 1e-4)


@pytest.mark.parametrize("scheduler", ["none", "cosine"])
def test_learning_rate_follows_the_scheduler(scheduler: str, tmp_path: Path, monkeypatch, capsys) -> None:
    lr, epochs, steps = 0.02, 2, 3
    args = ["--scheduler", scheduler, "--lr", str(lr), "--epochs", str(epochs), "--max-train-batches", str(steps)]
    recorder, run = tiny_run(args, tmp_path, monkeypatch)
    total = epochs * steps
    if scheduler == "none":
        expected = [lr] * total
    else:  # cosine annealing to 0 over all optimiser steps, stepped after every batch
        expected = [lr * (1 + math.cos(math.pi * k / total)) / 2 for k in range(1, total + 1)]
    assert recorder.lrs == pytest.approx(expected, rel=1e-9, abs=1e-12)
    records = _records(run)
    assert [r["lr"] for r in records] == pytest.approx([expected[steps - 1], expected[-1]], rel=1e-9, abs=1e-12)
    assert json.loads((run / "config.json").read_text())["scheduler"] == scheduler


def test_a_models_settings_for_the_dataset_fill_only_what_the_user_did_not_type() -> None:
    # delay-snn on SHD: the paper's 150 epochs of 256 and SHD's network (Hammouamri et al. 2024).
    cfg = cli.train_config(["--dataset", "shd", "--model", "delay-snn"])
    assert (cfg.epochs, cfg.batch_size, cfg.model_kwargs) == (150, 256, {"dataset": "shd"})
    cfg = cli.train_config(["--dataset", "ssc", "--model", "delay-snn", "--epochs", "3", "--model-arg", "hidden=64"])
    assert (cfg.epochs, cfg.batch_size, cfg.model_kwargs) == (3, 128, {"hidden": 64, "dataset": "ssc"})
    cfg = cli.train_config(["--dataset", "shd", "--model", "delay-snn", "--model-arg", "dataset=ssc"])
    assert cfg.model_kwargs == {"dataset": "ssc"}
    # The bundled digits: the model's small configuration, the config's own epochs and batch size.
    cfg = cli.train_config(["--dataset", "spoken-digits", "--model", "delay-snn"])
    assert (cfg.epochs, cfg.batch_size, cfg.model_kwargs) == (12, 32, {"dataset": "spoken-digits"})
    # Models without registered settings are untouched.
    assert cli.train_config(["--dataset", "shd"]).epochs == TrainConfig().epochs
