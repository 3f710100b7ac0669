"""scripts/compare_neurons.py runs end to end on the 8x8 digits at a tiny budget and writes its three outputs."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare_neurons.py"


def test_compare_neurons_writes_table_png_and_json(tmp_path):
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("compare_neurons", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "cmp"
    assert module.main(["--dataset", "sklearn-digits", "--seeds", "1", "--epochs", "1", "--width", "16",
                        "--time-steps", "10", "--out", str(out)]) == 0
    table = (tmp_path / "cmp.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| rule")]
    assert [r.split("|")[1].strip() for r in rows] == ["backprop", "backprop", "STDP + readout", "STDP + readout",
                                                      "Tempotron"]
    results = json.loads((tmp_path / "cmp.json").read_text())["results"]
    assert len(results) == 10 and all(0.0 <= v[0] <= 1.0 for v in results.values())
    # above chance (10 classes) for LIF under backprop even after one epoch
    assert results["backprop / rate / lif"][0] > 0.3
    assert (tmp_path / "cmp.png").stat().st_size > 1000
