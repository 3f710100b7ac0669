"""attacks.evaluate and `snnkit attack`: the table's numbers against the attacks run by hand, the saved JSON,
Markdown and PNG, and the command on a real run directory."""

import json

import pytest
import torch

from snnkit import attacks, cli


def _batches(x, y, size):
    return [(x[:, i : i + size], y[i : i + size]) for i in range(0, y.shape[0], size)]


def test_table_matches_the_attacks_run_by_hand(victim, test_data, tmp_path):
    x, y = test_data
    x, y = x[:, :20], y[:20]
    settings = attacks.AttackSettings(eps=0.2, steps=5, k_init=8, max_iter=40, seed=3)
    table = attacks.evaluate(victim, _batches(x, y, 20), ["pdsg-pgd", "pgd-rectangle", "sda"], settings=settings,
                             l0_threshold=10)
    with torch.no_grad():
        right = victim(x).mean(0).argmax(1) == y
    assert table.samples == 20 and table.correct == int(right.sum())
    assert table.clean_accuracy == pytest.approx(100.0 * int(right.sum()) / 20)
    xc, yc = x[:, right], y[right]
    # SDA by hand with the same generator state as evaluate's (seeded once, SDA runs after the two PGD attacks,
    # which draw their random starts from it first)
    g = torch.Generator().manual_seed(3)
    for name in ("pdsg-pgd", "pgd-rectangle"):
        attacks.ATTACKS.get(name)(victim, xc, yc, settings, g)
    r = attacks.sda(victim, xc, yc, k_init=8, max_iter=40, generator=g)
    row = {row["attack"]: row for row in table.rows}["sda"]
    assert row["attacked"] == xc.shape[1]
    assert row["asr"] == pytest.approx(100.0 * r.success.float().mean().item())
    ok = r.l0[r.success].double()
    assert row["l0_mean"] == pytest.approx(ok.mean().item())
    assert row["l0_median"] == pytest.approx(float(sorted(ok.tolist())[(len(ok) - 1) // 2]) if len(ok) % 2 else
                                             (sorted(ok.tolist())[len(ok) // 2 - 1] + sorted(ok.tolist())[len(ok) // 2]) / 2)
    assert row["asr_l0"] == pytest.approx(100.0 * int((r.l0[r.success] < 10).sum()) / xc.shape[1])
    assert row["l0_ratio"] == pytest.approx(100.0 * (ok / x[:, 0].numel()).mean().item())
    assert row["seconds_per_sample"] > 0
    paths = attacks.save_table(table, tmp_path)
    saved = json.loads(paths["json"].read_text())
    assert saved["rows"][2]["attack"] == "sda" and saved["correct"] == table.correct
    md = paths["md"].read_text()
    assert "| sda |" in md and "ASR@L0<10 %" in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_samples_limit_and_bad_names(victim, test_data):
    x, y = test_data
    table = attacks.evaluate(victim, _batches(x, y, 8), ["fgsm"], samples=10,
                             settings=attacks.AttackSettings(eps=0.1))
    assert table.samples == 10
    with pytest.raises(ValueError, match="unknown attack 'nope'; valid: fgsm"):
        attacks.evaluate(victim, _batches(x, y, 8), ["nope"])
    with pytest.raises(ValueError, match="needs binary event frames"):
        attacks.evaluate(victim, _batches(x * 0.5, y, 8), ["sda"])


def test_snnkit_attack_command_on_a_trained_run(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "1", "--max-train-batches", "2", "--out", str(tmp_path), "--name", "r",
                     "--no-progress", "--device", "cpu", "--model-arg", "hidden=[32]"]) == 0
    capsys.readouterr()
    assert cli.main(["attack", str(tmp_path / "r"), "--attacks", "pdsg-fgsm,sda", "--samples", "3", "--binarize",
                     "--max-iter", "5", "--k-init", "20"]) == 0
    out = capsys.readouterr().out
    assert "| pdsg-fgsm |" in out and "| sda |" in out
    saved = json.loads((tmp_path / "r" / "attacks" / "robustness.json").read_text())
    assert saved["samples"] == 3 and [r["attack"] for r in saved["rows"]] == ["pdsg-fgsm", "sda"]
    with pytest.raises(SystemExit, match="has no checkpoint"):
        cli.main(["attack", str(tmp_path / "missing")])
