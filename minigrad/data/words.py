"""Word-level text data: a tokenizer, a word vocabulary, padding with lengths, and batches
bucketed by length.

The pieces a text classifier needs between raw strings and an ``Embedding`` layer:
``tokenize`` (lowercase, strip HTML such as ``<br />``, split off punctuation), ``Vocab``
(``<pad>`` = 0, ``<unk>`` = 1, then words by frequency), ``pad_sequences`` (a ``(B, T)``
int64 array plus each row's length, ready for ``nn.LSTM(..., lengths=...)``) and
``bucket_batches`` (batches of similar lengths, so little compute is spent on padding).
"""
from __future__ import annotations

import html
import re
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["tokenize", "Vocab", "pad_sequences", "bucket_batches", "PAD", "UNK"]

PAD, UNK = "<pad>", "<unk>"

_TAG = re.compile(r"<[^>]{0,200}>")
# a word (letters/digits of any script, inner apostrophes kept: don't, l'amour) or one symbol
_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lowercase ``text``, remove HTML tags and entities, and split words from punctuation.

    >>> tokenize("Great film!<br /><br />Don't miss it...")
    ['great', 'film', '!', "don't", 'miss', 'it', '.', '.', '.']
    """
    text = _TAG.sub(" ", text)
    text = html.unescape(text).lower().replace("\u2019", "'")
    return _TOKEN.findall(text)


class Vocab:
    """Token <-> id map with ``<pad>`` at 0 and ``<unk>`` at 1.

    Build it with ``Vocab.build(token_lists, min_freq, max_size)``; tokens are ordered by
    falling frequency, ties alphabetically, so the same data gives the same ids.
    """

    pad_index = 0
    unk_index = 1

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tokens[:2] != [PAD, UNK]:
            raise ValueError(f"Vocab: the first two tokens must be {PAD!r} and {UNK!r}, "
                             f"got {tokens[:2]!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("Vocab: duplicate tokens")
        self.itos: list[str] = tokens
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.counts: dict[str, int] = {}  # training-data frequencies, filled by build()

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1,
              max_size: int | None = None) -> "Vocab":
        """A vocabulary of the tokens seen at least ``min_freq`` times.

        ``max_size`` caps the total size *including* ``<pad>`` and ``<unk>``, so it is the
        ``num_embeddings`` of the embedding layer."""
        if min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 2:
            raise ValueError(f"Vocab.build: max_size must be >= 2 (<pad> and <unk>), "
                             f"got {max_size}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        for special in (PAD, UNK):
            counts.pop(special, None)
        ranked = sorted((t for t, n in counts.items() if n >= min_freq),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[:max_size - 2]
        vocab = cls([PAD, UNK, *ranked])
        vocab.counts = {t: counts[t] for t in ranked}
        return vocab

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, self.unk_index)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.itos[2:8]!r})"

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens become ``<unk>`` (1)."""
        get, unk = self.stoi.get, self.unk_index
        return [get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int], skip_pad: bool = True) -> list[str]:
        """Tokens of ``ids`` (``<pad>`` dropped unless ``skip_pad=False``)."""
        out = []
        for i in np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids,
                            dtype=np.int64).reshape(-1).tolist():
            if not 0 <= i < len(self.itos):
                raise ValueError(f"Vocab.decode: id {i} is outside 0..{len(self.itos) - 1}")
            if skip_pad and i == self.pad_index:
                continue
            out.append(self.itos[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (``json.dumps`` and ``minigrad.save`` accept it)."""
        return {"kind": "word", "tokens": list(self.itos)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "Vocab":
        if state.get("kind", "word") != "word" or "tokens" not in state:
            raise ValueError("Vocab.from_dict: expected a dict made by Vocab.to_dict() "
                             f"(keys 'kind'='word' and 'tokens'), got keys {sorted(state)}")
        return cls([str(t) for t in state["tokens"]])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    __hash__ = None  # type: ignore[assignment]


def pad_sequences(seqs: Sequence[Sequence[int]], max_len: int | None = None,
                  pad_value: int = 0, truncating: str = "post",
                  min_len: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack id sequences into ``(B, T)`` int64, padded with ``pad_value`` at the end.

    Returns ``(padded, lengths)``; ``lengths[b]`` counts the real ids of row ``b``. Rows
    longer than ``max_len`` lose their end (``truncating='post'``) or their beginning
    (``'pre'``). ``T`` is the longest kept row, at least ``min_len``.
    """
    if truncating not in ("post", "pre"):
        raise ValueError(f"pad_sequences: truncating must be 'post' or 'pre', "
                         f"got {truncating!r}")
    if max_len is not None and max_len < 1:
        raise ValueError(f"pad_sequences: max_len must be >= 1, got {max_len}")
    rows = []
    for s in seqs:
        s = list(s)
        if max_len is not None and len(s) > max_len:
            s = s[:max_len] if truncating == "post" else s[len(s) - max_len:]
        rows.append(s)
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    width = max(int(lengths.max()) if len(rows) else 0, min_len)
    out = np.full((len(rows), width), pad_value, dtype=np.int64)
    for b, r in enumerate(rows):
        out[b, :len(r)] = r
    return out, lengths


def bucket_batches(lengths: Sequence[int] | np.ndarray, batch_size: int, shuffle: bool = True,
                   seed: int | None = 0, bucket_factor: int = 50,
                   drop_last: bool = False) -> list[np.ndarray]:
    """Index batches whose members have similar lengths.

    With ``shuffle``, the indices are shuffled, cut into pools of ``batch_size *
    bucket_factor``, each pool is sorted by length and cut into batches, and the batch order
    is shuffled again: every epoch differs (pass a different ``seed`` per epoch) yet each
    batch needs little padding. The same seed gives the same batches. Without ``shuffle``,
    indices are sorted by length (stable), which is the fastest order for evaluation.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if batch_size < 1:
        raise ValueError(f"bucket_batches: batch_size must be >= 1, got {batch_size}")
    n = len(lengths)
    if not shuffle:
        order = np.argsort(lengths, kind="stable")
        batches = [order[i:i + batch_size] for i in range(0, n, batch_size)]
    else:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(n)
        pool = max(batch_size * bucket_factor, batch_size)
        batches = []
        for start in range(0, n, pool):
            part = perm[start:start + pool]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
        batches = [batches[i] for i in rng.permutation(len(batches))]
    if drop_last:
        batches = [b for b in batches if len(b) == batch_size]
    return batches
