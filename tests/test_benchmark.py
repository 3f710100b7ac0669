"""snnkit.benchmark: the timers, the memory probes and the JSON writer the benchmark scripts share.

Timing bounds are loose (a factor of 3 or more) so that a loaded machine does not fail them.
"""

from __future__ import annotations

import json
import time

import pytest
import torch

import snnkit
from snnkit import benchmark


def _sleeper(seconds: float, calls: list[str] | None = None, name: str = ""):
    def fn() -> None:
        if calls is not None:
            calls.append(name)
        time.sleep(seconds)

    return fn


def test_median_ms_of_a_known_sleep():
    calls: list[str] = []
    ms = benchmark.median_ms(_sleeper(0.02, calls, "s"), "cpu", repeats=3, warmup=2)
    assert 20 / 3 <= ms <= 20 * 3 + 30
    assert len(calls) == 2 + 3  # warm-up calls are made but not timed


def test_median_ms_rejects_no_repeats():
    with pytest.raises(ValueError):
        benchmark.median_ms(lambda: None, "cpu", repeats=0)


def test_time_interleaved_one_entry_per_callable_and_round_robin_order():
    calls: list[str] = []
    fns = {"fast": _sleeper(0.002, calls, "fast"), "slow": _sleeper(0.03, calls, "slow")}
    ms = benchmark.time_interleaved(fns, "cpu", repeats=4, warmup=1)
    assert list(ms) == ["fast", "slow"]
    assert calls.count("fast") == calls.count("slow") == 1 + 4
    assert calls == ["fast", "slow"] * 5  # alternating, one call of each per round
    assert 30 / 3 <= ms["slow"] <= 30 * 3 + 30
    assert ms["fast"] < ms["slow"]


def test_time_interleaved_statistic_and_no_warmup():
    calls: list[str] = []
    ms = benchmark.time_interleaved({"a": _sleeper(0.0, calls, "a")}, "cpu", repeats=3, warmup=0, statistic=min)
    assert calls == ["a"] * 3
    assert 0.0 <= ms["a"] < 1e3


def test_elapsed_s_and_sync_on_cpu():
    benchmark.sync("cpu")  # nothing to wait for; must not touch CUDA
    benchmark.sync(torch.device("cpu"))
    s = benchmark.elapsed_s(_sleeper(0.01), "cpu")
    assert 0.01 / 3 <= s <= 0.01 * 3 + 0.03


def test_peak_bytes():
    assert benchmark.cuda_peak_bytes(lambda: torch.ones(1024), "cpu") is None
    peak = benchmark.cpu_peak_bytes(lambda: torch.ones(1 << 20, dtype=torch.uint8) + 1)
    assert peak >= 1 << 20  # at least the one MiB tensor


def test_device_name_on_cpu():
    name = benchmark.device_name("cpu")
    assert name.startswith("CPU: ") and f"{torch.get_num_threads()} thread(s)" in name
    assert benchmark.device_name(torch.device("cpu")) == name
    assert benchmark.cpu_model()


def test_package_version():
    version = benchmark.package_version("torch")
    assert version is not None and torch.__version__.startswith(version.split("+")[0])
    assert benchmark.package_version("no_such_package_for_snnkit_tests") is None


def test_write_json_records_device_and_versions(tmp_path):
    path = tmp_path / "sub" / "result.json"
    written = benchmark.write_json(path, {"benchmark": "x", "rows": [1, 2]}, device="cpu", indent=1)
    on_disk = json.loads(path.read_text())
    assert on_disk == written
    assert on_disk["device"] == benchmark.device_name("cpu")
    assert on_disk["torch"] == torch.__version__
    assert on_disk["snnkit"] == snnkit.__version__
    assert "triton" in on_disk
    assert on_disk["rows"] == [1, 2]


def test_write_json_keeps_the_fields_a_result_sets(tmp_path):
    path = tmp_path / "r.json"
    benchmark.write_json(path, {"device": "cpu", "device_name": "mine", "torch": "custom"})
    on_disk = json.loads(path.read_text())
    assert on_disk["device"] == "cpu" and on_disk["torch"] == "custom"
    assert "triton" in on_disk and "snnkit" in on_disk
    benchmark.write_json(path, {"a": 1})  # without a device: versions only
    assert "device" not in json.loads(path.read_text())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_bytes_and_name():
    peak = benchmark.cuda_peak_bytes(lambda: torch.ones(1 << 20, dtype=torch.uint8, device="cuda"), "cuda")
    assert peak is not None and peak >= 1 << 20
    assert benchmark.device_name("cuda") == torch.cuda.get_device_name()
    ms = benchmark.time_interleaved({"a": lambda: torch.ones(1024, device="cuda")}, "cuda", repeats=2)
    assert ms["a"] >= 0
