"""``snnkit train`` argument handling: clear one-line errors, never a traceback, for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from snnkit import cli


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
        (["--model", "resnet"], "unknown model 'resnet'; valid: mlp, vgg"),
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
    assert capsys.readouterr().out.split() == ["mlp", "vgg"]


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
