"""Language-model training through fit: the loss and bits-per-token metric by hand, the schedule, the per-layer
firing rates and synaptic operations, overfitting a short text, beating the unigram entropy on the built-in corpus,
and the ``snnkit train-lm`` / ``snnkit generate`` commands with exact resume of a killed run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from snnkit.cli import main
from snnkit.data.text import ByteTokenizer, LMWindows, default_corpus, split_ids, unigram_entropy
from snnkit.models import SpikeGPT
from snnkit.training import fit
from snnkit.training.lm import (
    BitsPerToken,
    LayerStats,
    LMConfig,
    WarmupExpDecay,
    adam_betas_optimizer,
    count_synops,
    lm_cross_entropy,
    load_lm_run,
    train_lm,
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_loss_and_bits_per_token_by_hand() -> None:
    V = 8
    logits = torch.zeros(2, 3, V)  # uniform: log V nats = 3 bits per token
    target = torch.randint(0, V, (2, 3))
    assert lm_cross_entropy(logits, target).item() == pytest.approx(math.log(V))
    metric = BitsPerToken()
    sums = metric.batch(logits, target) + metric.batch(logits[:1], target[:1])
    assert sums[1].item() == 9 and metric.result(sums) == pytest.approx(3.0)
    logits[0, 0, target[0, 0]] = 100.0  # one certain token: 0 bits for it
    assert metric.result(metric.batch(logits, target)) == pytest.approx(3.0 * 5 / 6, rel=1e-6)
    with pytest.raises(ValueError, match=r"target must have shape \[B, T\] = \[2, 3\]"):
        lm_cross_entropy(logits, target[:, :2])
    with pytest.raises(TypeError, match="integer tensor of next-token ids"):
        lm_cross_entropy(logits, target.float())
    with pytest.raises(ValueError, match=r"logits must be \[B, T, vocab\]"):
        lm_cross_entropy(logits[0], target)


def test_warmup_then_exponential_decay() -> None:
    f = WarmupExpDecay(warmup=4, total=14, final_ratio=1e-5 / 6e-4)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == 1.0
    assert f(9) == pytest.approx(math.sqrt(1e-5 / 6e-4))  # halfway through the decay, in log space
    assert f(14) == pytest.approx(1e-5 / 6e-4) and f(100) == pytest.approx(1e-5 / 6e-4)


def test_synaptic_operations_by_hand() -> None:
    """Every linear layer of SpikeGPT reads LayerNorm outputs (real values): 13 C^2 MACs per block and token (time mix
    4 C^2, channel mix 4 C^2 + 4 C^2 + C^2) plus C V for the head; every spike into the residual stream is one AC."""
    torch.manual_seed(0)
    C, V, L = 8, 20, 2
    model = SpikeGPT(vocab_size=V, n_layer=L, n_embd=C, ctx_len=16).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and not name.startswith("emb"):
                p.normal_(0, 1.0)
    idx = torch.randint(0, V, (3, 10))
    spikes = []
    lifs = [m for n, m in model.named_modules() if n.endswith(("lif1", "lif2"))]
    hooks = [m.register_forward_hook(lambda m, i, o: spikes.append(o[0].detach().sum())) for m in lifs]
    ops = count_synops(model, lambda: model(idx))
    for h in hooks:
        h.remove()
    tokens = 30
    assert ops["mac"] == tokens * (L * 13 * C * C + C * V)
    assert ops["ac"] == pytest.approx(float(sum(spikes))) and ops["ac"] > 0


def test_tiny_model_overfits_a_short_text() -> None:
    ids = torch.tensor(ByteTokenizer().encode("Spiking neurons fire when their membrane crosses the threshold. " * 3))
    ds = LMWindows(ids, ctx_len=32, stride=8)
    whole = next(iter(DataLoader(ds, batch_size=len(ds))))
    torch.manual_seed(0)
    model = SpikeGPT(vocab_size=256, n_layer=2, n_embd=32, ctx_len=32)
    with torch.no_grad():
        start = lm_cross_entropy(model(whole[0]), whole[1]).item()
    # one epoch of 150 steps on the whole text
    result = fit(model, [whole] * 150, test_data=[whole], epochs=1, optimizer=adam_betas_optimizer(3e-3),
                 loss="lm-ce", metrics=["bpc"], grad_clip=1.0, callbacks=[LayerStats()], progress=False)
    last = result.history[-1]
    assert start > 5.0
    assert last["test_loss"] < 0.1, last["test_loss"]
    # fit's spike counter and the per-layer rates see the four LIF layers, and they fire
    assert 0 < last["spike_rate"] < 1
    rates = last["firing_rates"]
    assert list(rates) == ["blocks.0.lif1", "blocks.0.lif2", "blocks.1.lif1", "blocks.1.lif2"]
    assert all(0 <= r < 1 for r in rates.values()) and sum(rates.values()) > 0
    assert last["synops_per_token"]["mac"] == 2 * 13 * 32 * 32 + 32 * 256
    assert not any(m._forward_hooks for m in result.model.modules()), "hooks left on the trained model"


def test_short_run_on_the_builtin_corpus_beats_the_unigram_entropy(tmp_path: Path) -> None:
    cfg = LMConfig(n_layer=1, n_embd=64, ctx_len=32, batch_size=16, epochs=1, steps_per_epoch=100, lr=3e-3,
                   warmup=10, eval_tokens=4096, out=str(tmp_path), name="pydoc")
    result = train_lm(cfg, progress=False)
    _, test = split_ids(torch.tensor(list(default_corpus().encode("utf-8"))), 0.1)
    entropy = unigram_entropy(test[1:4097])  # the evaluated held-out targets
    bpc = result.history[-1]["test_bpc"]
    assert bpc < entropy - 0.2, (bpc, entropy)


def _tiny_args(tmp_path: Path, corpus: Path, name: str) -> list[str]:
    return ["train-lm", "--data", str(corpus), "--n-layer", "1", "--n-embd", "16", "--ctx-len", "16",
            "--batch-size", "4", "--epochs", "2", "--steps-per-epoch", "4", "--ckpt-every", "3", "--eval-tokens",
            "200", "--warmup", "2", "--out", str(tmp_path), "--name", name, "--no-progress"]


class _Killed(Exception):
    pass


def _history(run: Path) -> list[dict]:
    drop = ("time", "train_seconds", "spikes_per_s")
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_cli_train_generate_and_exact_resume_of_a_killed_run(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The membrane potential of a leaky neuron decays between its input spikes. " * 12)
    assert main(_tiny_args(tmp_path, corpus, "whole")) == 0
    out = capsys.readouterr().out
    assert "held-out bits per token" in out and "LIF firing rates: blocks.0.lif1" in out

    # the same run killed after 5 steps (last checkpoint at step 3), then resumed from the command line
    cfg = LMConfig(data=str(corpus), n_layer=1, n_embd=16, ctx_len=16, batch_size=4, epochs=2, steps_per_epoch=4,
                   ckpt_every=3, eval_tokens=200, warmup=2, out=str(tmp_path), name="killed")

    def die(trainer) -> None:
        if trainer.global_step == 5:
            raise _Killed

    with pytest.raises(_Killed):
        train_lm(cfg, progress=False, callbacks=[die])
    assert main(["train-lm", "--resume", str(tmp_path / "killed"), "--no-progress"]) == 0
    whole, resumed = load_lm_run(tmp_path / "whole")[0], load_lm_run(tmp_path / "killed")[0]
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert _history(tmp_path / "whole") == _history(tmp_path / "killed")
    # the schedule ran: warm-up, then decay to final_lr at the last step
    assert _history(tmp_path / "whole")[-1]["lr"] == pytest.approx(LMConfig().final_lr)
    saved = json.loads((tmp_path / "whole" / "lm_config.json").read_text())
    assert saved["extra"]["model"]["vocab_size"] == 256 and saved["extra"]["tokenizer"] == {"kind": "byte"}

    capsys.readouterr()
    args = ["generate", str(tmp_path / "whole"), "--prompt", "The ", "--tokens", "30", "--temperature", "0.8",
            "--top-p", "0.9", "--seed", "3"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first and first.startswith("The ")


def test_cli_char_tokenizer_and_bad_arguments(tmp_path: Path, capsys) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 ".encode("latin-1") * 100)
    with pytest.raises(SystemExit, match="not UTF-8 text"):
        main(["train-lm", "--data", str(latin1), "--tokenizer", "char", "--out", str(tmp_path), "--no-progress"])
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(SystemExit, match="is empty"):
        main(["train-lm", "--data", str(empty), "--out", str(tmp_path), "--no-progress"])
    short = tmp_path / "short.txt"
    short.write_text("tiny text")
    with pytest.raises(SystemExit, match="fewer than ctx_len"):
        main(["train-lm", "--data", str(short), "--ctx-len", "64", "--out", str(tmp_path), "--no-progress"])
    for flag, value, problem in (("--n-layer", "0", "must be an integer >= 1"), ("--top-p", "1.5", None),
                                 ("--lr", "nan", "must be a number"), ("--ctx-len", "x", "must be an integer")):
        argv = (["generate", str(tmp_path), flag, value] if flag == "--top-p" else ["train-lm", flag, value])
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}:" in err and (problem is None or problem in err), err
    with pytest.raises(SystemExit) as exc:
        main(["train-lm", "--lr", "1e-4", "--final-lr", "1e-3"])
    assert exc.value.code == 2 and "argument --final-lr: must be in (0, lr" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="not a train-lm run directory"):
        main(["generate", str(tmp_path)])


def test_tokenizers_file_run_reports_bits_per_byte_and_generates(tmp_path: Path, capsys) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    text = "the spiking neuron fires and the neuron rests while the membrane decays. " * 30
    hf = Tokenizer(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.train_from_iterator([text], trainers.BpeTrainer(vocab_size=80, special_tokens=["[UNK]"]))
    tok_path = tmp_path / "my-tokenizer.json"
    hf.save(str(tok_path))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text)
    cfg = LMConfig(data=str(corpus), tokenizer=str(tok_path), n_layer=1, n_embd=16, ctx_len=8, batch_size=4,
                   epochs=1, steps_per_epoch=3, held_out=0.3, out=str(tmp_path), name="bpe")
    rec = train_lm(cfg, progress=False).history[-1]
    saved = json.loads((tmp_path / "bpe" / "lm_config.json").read_text())["extra"]
    assert saved["tokenizer"] == {"kind": "file", "path": "tokenizer.json"}
    assert (tmp_path / "bpe" / "tokenizer.json").is_file()
    assert saved["model"]["vocab_size"] == hf.get_vocab_size()
    # bits per byte = bits per token * held-out tokens / held-out bytes, and a token spans several bytes here
    assert rec["test_bpb"] == pytest.approx(rec["test_bpc"] * saved["test_tokens"] / saved["test_bytes"])
    assert saved["test_bytes"] > 2 * saved["test_tokens"]
    tok_path.unlink()  # the run is self-contained
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "bpe"), "--prompt", "the neuron", "--tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("the neuron")
