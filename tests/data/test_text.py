"""Text data for language models: tokenizers (byte, char, tokenizers file), the built-in corpus, the held-out split,
next-token windows, and the bad inputs (empty file, non-UTF-8 text with the character tokenizer, ids out of range,
a text shorter than one window)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from snnkit.data.text import (
    ByteTokenizer,
    CharTokenizer,
    FileTokenizer,
    LMWindows,
    default_corpus,
    make_tokenizer,
    read_corpus,
    split_ids,
    tokenizer_from_spec,
    unigram_entropy,
)


def test_byte_tokenizer_is_utf8() -> None:
    tok = ByteTokenizer()
    assert tok.vocab_size == 256
    assert tok.encode("Aé") == [65, 0xC3, 0xA9]
    assert tok.decode(tok.encode("naïve → ok")) == "naïve → ok"
    assert tok.encode(b"\xff\x00") == [255, 0]
    assert tok.decode([0xFF]) == "\ufffd"  # an invalid byte is shown, not raised
    assert isinstance(tokenizer_from_spec(tok.spec()), ByteTokenizer)


def test_char_tokenizer_round_trip_and_unknown_character() -> None:
    tok = CharTokenizer.fit("hello wörld")
    assert tok.vocab_size == len(set("hello wörld"))
    assert tok.decode(tok.encode("wörld hello")) == "wörld hello"
    again = tokenizer_from_spec(tok.spec())
    assert again.encode("hello") == tok.encode("hello")
    with pytest.raises(ValueError, match="'z' is not in the character tokenizer's vocabulary"):
        tok.encode("z")


def test_tokenizers_file(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.train_from_iterator(["the spiking neuron fires", "the neuron rests"] * 20,
                           trainers.BpeTrainer(vocab_size=60, special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    tok = make_tokenizer(str(path), "")
    assert isinstance(tok, FileTokenizer) and tok.vocab_size == hf.get_vocab_size()
    ids = tok.encode("the neuron fires")
    assert ids == hf.encode("the neuron fires").ids and len(ids) < len("the neuron fires")
    assert tok.decode(ids).replace(" ", "") == "theneuronfires"
    assert tokenizer_from_spec({"kind": "file", "path": "tokenizer.json"}, base=tmp_path).encode("the") == \
        tok.encode("the")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a tokenizers file"):
        FileTokenizer(bad)
    with pytest.raises(FileNotFoundError, match="tokenizer file"):
        FileTokenizer(tmp_path / "missing.json")


def test_default_corpus_ships_with_python() -> None:
    from pydoc_data.topics import topics

    text = default_corpus()
    assert len(text) > 400_000 and text == default_corpus()
    assert topics["if"] in text
    assert read_corpus(None, "byte") == text.encode("utf-8")


def test_a_python_without_pydoc_data_gets_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)  # how a stripped installation imports
    with pytest.raises(FileNotFoundError, match="--data FILE"):
        default_corpus()


def test_read_corpus_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        read_corpus(empty)
    with pytest.raises(FileNotFoundError, match="corpus file"):
        read_corpus(tmp_path / "nope.txt")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ValueError, match=r"not UTF-8 text \(invalid byte 0xe9 at offset 3\).*character tokenizer"):
        read_corpus(latin1, "char")
    assert read_corpus(latin1, "byte") == "caf\xe9 au lait".encode("latin-1")  # bytes need no decoding


def test_split_holds_out_the_tail() -> None:
    ids = torch.arange(100)
    train, test = split_ids(ids, 0.1)
    assert torch.equal(train, torch.arange(90)) and torch.equal(test, torch.arange(90, 100))
    with pytest.raises(ValueError, match="held_out"):
        split_ids(ids, 1.0)


def test_lm_windows_are_next_token_pairs() -> None:
    ids = torch.arange(23)
    ds = LMWindows(ids, ctx_len=5)
    assert len(ds) == (23 - 1 - 5) // 5 + 1 == 4
    x, y = ds[2]
    assert torch.equal(x, torch.arange(10, 15)) and torch.equal(y, torch.arange(11, 16))
    assert torch.equal(ds[-1][1], torch.arange(16, 21))
    overlapping = LMWindows(ids, ctx_len=5, stride=2)
    assert len(overlapping) == 9 and torch.equal(overlapping[8][1], torch.arange(17, 22))
    with pytest.raises(IndexError):
        ds[4]


def test_lm_windows_bad_input() -> None:
    with pytest.raises(ValueError, match=r"has 4 tokens, fewer than ctx_len \+ 1 = 9"):
        LMWindows(torch.arange(4), ctx_len=8)
    with pytest.raises(ValueError, match="token id 300, outside the vocabulary"):
        LMWindows(torch.tensor([1, 2, 300, 4]), ctx_len=2, vocab_size=256)
    with pytest.raises(ValueError, match="ctx_len must be >= 1"):
        LMWindows(torch.arange(10), ctx_len=0)


def test_unigram_entropy() -> None:
    assert unigram_entropy([0, 1, 2, 3] * 5) == pytest.approx(2.0)
    assert unigram_entropy([7] * 9) == 0.0
    p = [0.5, 0.25, 0.25]
    assert unigram_entropy([0, 0, 1, 2]) == pytest.approx(-sum(q * math.log2(q) for q in p))
