"""The entry points in ``scripts/`` still run: each one on a tiny configuration, checking what it writes.

The benchmark and experiment scripts are what the docs tell a user to run; they import most of the library, so a
renamed argument or a moved function breaks them without breaking any unit test. The sizes here are far too small
to mean anything as measurements: these tests check the plumbing (arguments, the JSON and figures written, the
device recorded), not numbers.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each script runs in its own folder and may change torch's thread count: both are restored."""
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def read(path: Path) -> dict:
    assert path.is_file(), f"{path.name} was not written"
    return json.loads(path.read_text())


def test_bench_nalsm(tmp_path):
    load("bench_nalsm").main(["--sizes", "3", "--time-steps", "20", "--samples-b1", "2", "--batches", "1", "4",
                              "--threads", "1", "2", "--out", str(tmp_path / "n.json")])
    out = read(tmp_path / "n.json")
    assert "CPU" in out["device"]
    rows = out["results"]
    assert [(r["threads"], r["batch"]) for r in rows] == [(1, 1), (1, 4), (2, 1), (2, 4)]
    assert all(r["samples_per_s"] > 0 and r["neurons"] == 27 for r in rows)
    assert rows[0]["speedup_over_batch1"] == 1.0


def test_bench_lif(tmp_path):
    load("bench_lif").main(["--device", "cpu", "--T", "4", "--N", "10", "--dtype", "float32", "--repeats", "1",
                            "--no-fused", "--out", str(tmp_path / "l.json")])
    out = read(tmp_path / "l.json")
    assert out["device"] and out["spikingjelly"]
    (row,) = out["results"]
    assert (row["T"], row["N"], row["dtype"]) == (4, 1024, "float32")
    assert row["snnkit_exact_fwd_ms"] > 0 and row["spikingjelly_fwd_ms"] > 0


def test_bench_wkv(tmp_path):
    load("bench_wkv").main(["--device", "cpu", "--B", "1", "--C", "8", "--T", "16", "--dtype", "float32",
                            "--repeats", "1", "--no-fla", "--out", str(tmp_path / "w.json")])
    (row,) = read(tmp_path / "w.json")["rows"]
    assert row["T"] == 16 and row["forward_backward_ms"]["torch"] > 0


def test_bench_delay(tmp_path):
    load("bench_delay").main(["--configs", "shd", "--batch", "2", "--time", "10", "--repeats", "1", "--device", "cpu",
                              "--out", str(tmp_path / "d.json")])
    rows = read(tmp_path / "d.json")["rows"]
    assert rows and all(r["config"] == "shd" and r["B"] == 2 and r["T"] == 10 for r in rows)
    # the op agrees with its oracle and with the dcls package on every row the benchmark times
    assert max(r["rel_err_vs_oracle"] for r in rows) < 1e-5
    assert max(r["rel_err_vs_dcls"] for r in rows if r["rel_err_vs_dcls"] is not None) < 1e-4


def test_bench_sltt(tmp_path):
    load("bench_sltt").main(["--device", "cpu", "--T", "2", "--batch", "2", "--size", "16", "--iters", "1",
                             "--out", str(tmp_path / "s.json")])
    rows = read(tmp_path / "s.json")["rows"]
    assert {r["method"] for r in rows} >= {"bptt", "sltt"} and all(r["T"] == 2 for r in rows)


def test_bench_spikegpt(tmp_path):
    load("bench_spikegpt").main(["--device", "cpu", "--n-layer", "1", "--n-embd", "16", "--ctx-len", "16",
                                 "--batch-size", "1", "--gen-tokens", "4", "--repeats", "1",
                                 "--out", str(tmp_path / "g.json")])
    out = read(tmp_path / "g.json")
    assert out["device"] and out["parameters"] > 0 and out["gen_tokens"] == 4


def test_bench_data(tmp_path):
    load("bench_data").main(["--samples", "8", "--spikes", "100", "--batch-size", "4", "--workers", "0",
                             "--store-epochs", "1", "--out", str(tmp_path / "b.json")])
    out = read(tmp_path / "b.json")
    assert out["samples"] == 8 and all(r["samples_per_s"] > 0 for r in out["rows"])


@pytest.mark.parametrize("dataset", ["digits", "spoken-digits"])
def test_run_nalsm(tmp_path, dataset):
    if dataset == "digits":
        pytest.importorskip("sklearn")
    args = ["--dataset", dataset, "--grid", "3", "3", "3", "--time-steps", "70", "--init-samples", "10",
            "--probe-every", "5", "--bf-samples", "4", "--batch", "16", "--readout-epochs", "5", "--limit", "40",
            "--out", str(tmp_path / "nalsm")]
    load("run_nalsm").main(args + (["--all"] if dataset == "digits" else []))
    results = read(tmp_path / "nalsm.json")["results"]
    variants = [r["variant"] for r in results]
    assert variants == (["LSM", "LSM+STDP", "NALSM"] if dataset == "digits" else ["NALSM"])
    for r in results:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["branching_factor"] > 0 and r["neurons"] == 27
    if dataset == "digits":
        assert (tmp_path / "nalsm.png").stat().st_size > 0


def test_eval_robustness(tmp_path):
    load("eval_robustness").main(["--out", str(tmp_path / "runs"), "--name", "tiny", "--epochs", "3", "--hidden",
                                  "64", "--samples", "6", "--attacks", "fgsm,pdsg-pgd,sda", "--steps", "2",
                                  "--max-iter", "10", "--eps", "2/255,8/255", "--summary", str(tmp_path / "sum.json")])
    summary = read(tmp_path / "sum.json")
    assert [round(r["eps"] * 255) for r in summary] == [2, 8]
    for r in summary:
        assert set(r["asr"]) == {"fgsm", "pdsg-pgd", "sda"} and r["hidden"] == "64"
    run = tmp_path / "runs" / "tiny"
    assert read(run / "victim.json")["surrogate"] == "atan"
    for eps in (2, 8):
        table = read(run / "attacks" / f"robustness-eps{eps}.json")
        assert [row["attack"] for row in table["rows"]] == ["fgsm", "pdsg-pgd", "sda"]
        assert (run / "attacks" / f"robustness-eps{eps}.md").is_file()
