"""Two-process DistributedDataParallel on CPU (gloo) under torchrun: ranks agree, and resume stays exact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from snnkit.training import read_jsonl

HERE = Path(__file__).parent


def load_ranks(run: Path) -> list[dict[str, torch.Tensor]]:
    return [torch.load(run / f"rank{r}.pt", weights_only=True) for r in range(2)]


def assert_equal_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_two_process_gloo_ranks_identical_and_resume_exact(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(HERE / "_ddp_worker.py"),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]

    r0, r1 = load_ranks(tmp_path / "full")
    # Parameters and BatchNorm statistics (averaged across ranks before checkpoints and evaluation) agree bit for bit.
    assert_equal_states(r0, r1)
    records = read_jsonl(tmp_path / "full" / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2]
    assert records[-1]["samples"] == 60  # both shards counted: 2 ranks x 30 samples
    # Rank 0 alone writes the run directory.
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "curves.png",
        "metrics.jsonl",
        "rank0.pt",
        "rank1.pt",
        "raster.png",
    ]

    # The run crashed in epoch 2 and resumed under DDP ends with the uninterrupted run's weights on both ranks.
    k0, k1 = load_ranks(tmp_path / "killed")
    assert_equal_states(k0, k1)
    assert_equal_states(k0, r0)
    assert read_jsonl(tmp_path / "killed" / "metrics.jsonl")[-1]["test_acc"] == records[-1]["test_acc"]

    # SLTT under DDP: ranks still agree (the gradients were all-reduced), and the weights moved from the start.
    s0, s1 = load_ranks(tmp_path / "sltt")
    assert_equal_states(s0, s1)
    assert read_jsonl(tmp_path / "sltt" / "metrics.jsonl")[-1]["samples"] == 60
