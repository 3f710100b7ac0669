"""Text for language models: tokenizers, corpora and next-token windows (SpikeGPT, :mod:`snnkit.models.spikegpt`).

Tokenizers (each with ``vocab_size``, ``encode(text) -> list[int]``, ``decode(ids) -> str`` and ``spec()``, the
JSON-able description :func:`tokenizer_from_spec` rebuilds it from):

- :class:`ByteTokenizer` (the default): the UTF-8 bytes of the text, vocabulary 256. Any file works, also one that
  is not UTF-8 (enwik8 is read as raw bytes, as in the character-level enwik8 benchmark); bits per token are then
  bits per byte.
- :class:`CharTokenizer`: one token per Unicode character of the corpus (the vocabulary is the corpus' characters);
  the file must be UTF-8.
- :class:`FileTokenizer`: any Hugging Face ``tokenizers`` file (``tokenizer.json``; BPE, WordPiece, ...).

The default corpus (:func:`default_corpus`, name ``"pydoc-topics"``) needs no download: the Python documentation's
help topics that ship with every CPython installation in ``pydoc_data.topics`` (about 465 kB of English prose and
code samples; the text of ``help("if")`` and its 78 siblings), joined in the order of their topic names.

:class:`LMWindows` cuts a token sequence into ``(ids [ctx_len], next ids [ctx_len])`` pairs; :func:`split_ids` holds
out the end of the corpus.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from ..validation import check_positive_int

__all__ = ["Tokenizer", "ByteTokenizer", "CharTokenizer", "FileTokenizer", "tokenizer_from_spec", "make_tokenizer",
           "TOKENIZER_KINDS", "DEFAULT_CORPUS", "default_corpus", "read_corpus", "split_ids", "LMWindows",
           "unigram_entropy"]

#: The name of the built-in corpus (``--data`` left out).
DEFAULT_CORPUS = "pydoc-topics"
#: ``make_tokenizer`` kinds besides a tokenizer file path.
TOKENIZER_KINDS = ("byte", "char")


class Tokenizer(Protocol):
    vocab_size: int

    def encode(self, text: str | bytes) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def spec(self) -> dict[str, Any]: ...


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256); ``encode`` also takes raw ``bytes`` (a file read as is)."""

    vocab_size = 256

    def encode(self, text: str | bytes) -> list[int]:
        return list(text if isinstance(text, bytes) else text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        # A sampled byte sequence need not be valid UTF-8; show the bad bytes as U+FFFD instead of failing.
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def spec(self) -> dict[str, Any]:
        return {"kind": "byte"}


class CharTokenizer:
    """One token per character; the vocabulary is ``chars`` (sorted characters of a corpus, see :meth:`fit`)."""

    def __init__(self, chars: Sequence[str]) -> None:
        chars = list(chars)
        if not chars or any(not isinstance(c, str) or len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise ValueError("chars must be a non-empty list of distinct single characters")
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.vocab_size = len(chars)

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is the characters of ``text``."""
        if not isinstance(text, str):
            raise TypeError("the character tokenizer needs text (str): decode the file as UTF-8 first")
        return cls(sorted(set(text)))

    def encode(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):
            raise TypeError("the character tokenizer needs text (str), got bytes")
        try:
            return [self.index[c] for c in text]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the character tokenizer's vocabulary") from None

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def spec(self) -> dict[str, Any]:
        return {"kind": "char", "chars": "".join(self.chars)}


class FileTokenizer:
    """A Hugging Face ``tokenizers`` tokenizer loaded from ``path`` (a ``tokenizer.json``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file {path} not found")
        try:
            self.tok = HFTokenizer.from_file(str(path))
        except Exception as e:  # the library raises a bare Exception for a malformed file
            raise ValueError(f"{path} is not a tokenizers file (tokenizer.json): {e}") from None
        self.path = path
        self.vocab_size = self.tok.get_vocab_size()

    def encode(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):
            raise TypeError("a tokenizers tokenizer needs text (str), got bytes")
        return self.tok.encode(text).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode([int(i) for i in ids])

    def spec(self) -> dict[str, Any]:
        return {"kind": "file", "path": str(self.path)}


def tokenizer_from_spec(spec: dict[str, Any], base: str | os.PathLike | None = None) -> Tokenizer:
    """The tokenizer described by ``spec`` (what ``tokenizer.spec()`` returned); a relative file path is taken
    relative to ``base`` (a run directory)."""
    kind = spec.get("kind")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer(list(spec["chars"]))
    if kind == "file":
        path = Path(spec["path"])
        return FileTokenizer(path if path.is_absolute() or base is None else Path(base) / path)
    raise ValueError(f"unknown tokenizer kind {kind!r} (expected 'byte', 'char' or 'file')")


def make_tokenizer(kind: str, corpus: str | bytes) -> Tokenizer:
    """``"byte"``, ``"char"`` (vocabulary fitted on ``corpus``) or the path of a tokenizers file."""
    if kind == "byte":
        return ByteTokenizer()
    if kind == "char":
        return CharTokenizer.fit(corpus)  # type: ignore[arg-type]
    return FileTokenizer(kind)


def default_corpus() -> str:
    """The built-in corpus: CPython's help topics (``pydoc_data.topics``), joined by blank lines in name order.

    Raises:
        FileNotFoundError: this Python installation was stripped of ``pydoc_data`` (some minimal distribution
            packages do that); the message says to pass a text file instead.
    """
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise FileNotFoundError(
            "the built-in corpus (Python's help topics, pydoc_data.topics) is missing from this Python installation; "
            "train on a text file instead (snnkit train-lm --data FILE)"
        ) from None

    return "\n\n".join(topics[name] for name in sorted(topics))


def read_corpus(path: str | os.PathLike | None, tokenizer_kind: str = "byte") -> str | bytes:
    """The training text: :func:`default_corpus` when ``path`` is None, else the file at ``path``.

    With the byte tokenizer the file is read as raw bytes (any encoding, any binary file); the character tokenizer
    and tokenizer files need UTF-8 text.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty, or it is not UTF-8 but the tokenizer needs text (naming the byte offset).
    """
    if path is None:
        return default_corpus().encode("utf-8") if tokenizer_kind == "byte" else default_corpus()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"corpus file {p} not found")
    raw = p.read_bytes()
    if not raw:
        raise ValueError(f"corpus file {p} is empty; a language model needs text to train on")
    if tokenizer_kind == "byte":
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        what = "the character tokenizer" if tokenizer_kind == "char" else "a tokenizers tokenizer"
        raise ValueError(f"corpus file {p} is not UTF-8 text (invalid byte 0x{raw[e.start]:02x} at offset "
                         f"{e.start}), which {what} needs; use the byte tokenizer (--tokenizer byte) for arbitrary "
                         "bytes") from None


def split_ids(ids: torch.Tensor, held_out: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, held-out)``: the last ``held_out`` fraction of the token sequence is held out (a contiguous tail, so
    no held-out text is also seen in training windows)."""
    if not isinstance(held_out, float) or not 0 < held_out < 1:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out!r}")
    n_test = max(1, int(round(len(ids) * held_out)))
    return ids[: len(ids) - n_test], ids[len(ids) - n_test:]


class LMWindows(Dataset):
    """Next-token windows of a 1-D token sequence: item ``i`` is
    ``(ids[s : s + ctx_len], ids[s + 1 : s + ctx_len + 1])`` with ``s = i * stride`` (non-overlapping windows by default). Batched by a DataLoader into ``[B, ctx_len]`` pairs.

    Raises:
        ValueError: the sequence is shorter than ``ctx_len + 1`` tokens (naming both), or token ids are out of
            ``[0, vocab_size)`` when ``vocab_size`` is given.
    """

    def __init__(self, ids: torch.Tensor | Sequence[int], ctx_len: int, stride: int | None = None,
                 vocab_size: int | None = None, name: str = "ids") -> None:
        from ..models.spikegpt import check_token_ids

        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        self.ctx_len = check_positive_int("ctx_len", ctx_len)
        self.stride = check_positive_int("stride", stride if stride is not None else ctx_len)
        if vocab_size is not None:
            check_token_ids(name, ids, vocab_size)
        if len(ids) < ctx_len + 1:
            raise ValueError(f"{name} has {len(ids)} tokens, fewer than ctx_len + 1 = {ctx_len + 1} (one window and "
                             "its next token); use a longer text or a smaller ctx_len")
        self.ids = ids
        self.count = (len(ids) - 1 - ctx_len) // self.stride + 1

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -self.count <= i < self.count:
            raise IndexError(f"window {i} out of range for {self.count} windows")
        s = (i % self.count) * self.stride
        return self.ids[s: s + self.ctx_len], self.ids[s + 1: s + self.ctx_len + 1]


def unigram_entropy(ids: torch.Tensor | Sequence[int]) -> float:
    """Entropy in bits per token of the token frequencies of ``ids`` (what a model that ignores context achieves at
    best on that text)."""
    counts = Counter(torch.as_tensor(ids).reshape(-1).tolist())
    n = sum(counts.values())
    if n == 0:
        raise ValueError("ids is empty")
    return -sum(c / n * math.log2(c / n) for c in counts.values())
