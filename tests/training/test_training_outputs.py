"""What a run leaves in its directory (metrics.jsonl, PNGs, config.json) and the spike counter behind spikes/s."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from snnkit import models
from snnkit.training import SpikeCounter, read_jsonl, train
from snnkit.training.metrics import append_jsonl, neuron_modules

PNG = b"\x89PNG\r\n\x1a\n"


def test_run_directory_contents(bundle, cfg) -> None:
    result = train(cfg, data=bundle, progress=False)
    run = Path(cfg.out) / cfg.name
    assert result.run_dir == run
    records = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        for key in ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "spike_rate", "spikes_per_s", "samples"):
            assert key in r, key
        assert 0.0 <= r["test_acc"] <= 1.0 and r["samples"] == 60
        assert 0.0 <= r["spike_rate"] <= 1.0
    assert records == result.history
    assert result.test_acc == records[-1]["test_acc"]
    for png in ("curves.png", "raster.png"):
        data = (run / png).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, png
    assert json.loads((run / "config.json").read_text())["batch_size"] == 8
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "curves.png",
        "metrics.jsonl",
        "raster.png",
    ]


def test_new_run_never_overwrites(bundle, cfg) -> None:
    import pytest

    train(cfg, data=bundle, progress=False)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(cfg, data=bundle, progress=False)
    # Without an explicit name, runs get fresh directories.
    from dataclasses import replace

    a = train(replace(cfg, name=None, epochs=1), data=bundle, progress=False)
    b = train(replace(cfg, name=None, epochs=1), data=bundle, progress=False)
    assert a.run_dir != b.run_dir and a.run_dir.parent == b.run_dir.parent == Path(cfg.out)


def test_spike_counter_counts_every_neuron_output() -> None:
    torch.manual_seed(0)
    model = models.build("mlp", (12,), 3, hidden=(16, 8), dropout=0.0)
    assert [n for n, _ in neuron_modules(model)] == ["features.2", "features.6"]
    x = (torch.rand(10, 4, 12) < 0.5).float() * 3
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: outputs.append(o)) for _, m in neuron_modules(model)]
    with SpikeCounter(model) as counter:
        counter.record = True
        model(x)
        spikes, steps = counter.totals()
        assert set(counter.recorded) == {"features.2", "features.6"}
    for h in hooks:
        h.remove()
    assert spikes == sum(o.sum().item() for o in outputs) and spikes > 0
    assert steps == 10 * 4 * (16 + 8)
    # Closed: hooks removed, counting stops.
    model(x)
    assert counter.totals() == (spikes, steps)


def test_read_jsonl_ignores_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"epoch": 1})
    with open(path, "a") as f:
        f.write('{"epoch": 2, "trai')
    assert read_jsonl(path) == [{"epoch": 1}]
