"""Character-level text data: a character vocabulary and contiguous-stream batching for
language models trained with truncated backprop through time.

``CharVocab`` maps every distinct character (any script: Latin, Hangul, Cyrillic, emoji, ...)
to an integer id and back, and serialises to a JSON-able dict so it can travel inside a
checkpoint. ``StreamBatcher`` cuts one long id sequence into ``batch_size`` parallel streams
and walks them ``seq_len`` steps at a time, so the hidden state of row ``b`` at the end of one
chunk is the right starting state for row ``b`` of the next chunk.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Iterator

import numpy as np

__all__ = ["CharVocab", "StreamBatcher", "split_ids"]


class CharVocab:
    """A bijection between characters and ids ``0 .. len(vocab) - 1``.

    Characters are ordered by code point, so the same text always gives the same ids.
    """

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        for ch in chars:
            if not isinstance(ch, str) or len(ch) != 1:
                raise ValueError(f"CharVocab: every entry must be one character, got {ch!r}")
        if len(set(chars)) != len(chars):
            dup = [c for c, n in Counter(chars).items() if n > 1]
            raise ValueError(f"CharVocab: duplicate characters {dup!r}")
        self.chars: list[str] = chars
        self.index: dict[str, int] = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """The vocabulary of every distinct character in ``text``."""
        if not text:
            raise ValueError("CharVocab.from_text: the text is empty")
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: str) -> bool:
        return ch in self.index

    def __repr__(self) -> str:
        shown = "".join(self.chars[:30])
        more = "..." if len(self.chars) > 30 else ""
        return f"CharVocab(size={len(self)}, chars={shown!r}{more})"

    def encode(self, text: str, errors: str = "strict") -> np.ndarray:
        """Ids of ``text`` as an int64 array.

        errors='strict' raises ``ValueError`` listing unknown characters; 'ignore' drops them.
        """
        if errors not in ("strict", "ignore"):
            raise ValueError(f"CharVocab.encode: errors must be 'strict' or 'ignore', "
                             f"got {errors!r}")
        index = self.index
        unknown = {c for c in set(text) if c not in index}
        if unknown and errors == "strict":
            raise ValueError(f"CharVocab.encode: characters not in the vocabulary: "
                             f"{''.join(sorted(unknown))!r}")
        return np.fromiter((index[c] for c in text if c in index), dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """The text spelled by ``ids``."""
        chars = self.chars
        n = len(chars)
        out = []
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            if not 0 <= i < n:
                raise ValueError(f"CharVocab.decode: id {i} is outside 0..{n - 1}")
            out.append(chars[i])
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description (``json.dumps`` and ``minigrad.save`` accept it)."""
        return {"kind": "char", "chars": list(self.chars)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "CharVocab":
        if state.get("kind", "char") != "char" or "chars" not in state:
            raise ValueError("CharVocab.from_dict: expected a dict made by CharVocab.to_dict() "
                             f"(keys 'kind'='char' and 'chars'), got keys {sorted(state)}")
        chars = state["chars"]
        return cls(list(chars) if isinstance(chars, str) else [str(c) for c in chars])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and self.chars == other.chars

    __hash__ = None  # type: ignore[assignment]


def split_ids(ids: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Split a sequence into a leading training part and a trailing validation part.

    The split is contiguous (no shuffling), as is right for a language-model corpus.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"split_ids: val_fraction must be in [0, 1), got {val_fraction}")
    ids = np.asarray(ids)
    n_val = int(round(len(ids) * val_fraction))
    cut = len(ids) - n_val
    return ids[:cut], ids[cut:]


class StreamBatcher:
    """Contiguous LM batches for truncated BPTT.

    The corpus ``ids`` (length N) is cut into ``batch_size`` streams of ``L = (N - 1) // B``
    steps each; stream ``b`` covers ``ids[b*L : (b+1)*L + 1]``. Chunk ``k`` is
    ``(input, target) = (streams[:, kT:(k+1)T], streams[:, kT+1:(k+1)T+1])``, both int64 of
    shape ``(B, T)`` (the last chunk may be shorter unless ``drop_last``). Row ``b`` of chunk
    ``k + 1`` continues row ``b`` of chunk ``k``, so a model can carry its hidden state.

    The batcher keeps its place: ``position`` (chunks already given out this epoch) and
    ``epoch``. ``state_dict()`` / ``load_state_dict()`` save and restore them, so training
    resumed from a checkpoint sees exactly the chunks it would have seen.
    """

    def __init__(self, ids: np.ndarray | Iterable[int], batch_size: int, seq_len: int,
                 drop_last: bool = False):
        ids = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64)
        if ids.ndim != 1:
            raise ValueError(f"StreamBatcher: ids must be 1-D, got shape {ids.shape}")
        if batch_size < 1 or seq_len < 1:
            raise ValueError(f"StreamBatcher: batch_size and seq_len must be >= 1, got "
                             f"{batch_size} and {seq_len}")
        steps = (len(ids) - 1) // batch_size
        if steps < 1:
            raise ValueError(f"StreamBatcher: a corpus of {len(ids)} ids is too short for "
                             f"{batch_size} streams (need at least {batch_size + 1})")
        self.batch_size, self.seq_len, self.drop_last = batch_size, seq_len, drop_last
        self.steps_per_stream = steps
        starts = np.arange(batch_size) * steps
        # (B, L + 1): each row is its stream plus the one id that follows it
        self.streams = ids[starts[:, None] + np.arange(steps + 1)[None, :]]
        self.position = 0
        self.epoch = 0

    def __len__(self) -> int:
        """Chunks per epoch."""
        full, rest = divmod(self.steps_per_stream, self.seq_len)
        return full + (1 if rest and not self.drop_last else 0)

    @property
    def tokens_per_epoch(self) -> int:
        """Target ids covered in one epoch."""
        kept = len(self) * self.seq_len if self.drop_last else self.steps_per_stream
        return self.batch_size * min(kept, self.steps_per_stream)

    def chunk(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ``k`` of an epoch, without moving the position."""
        if not 0 <= k < len(self):
            raise IndexError(f"StreamBatcher.chunk: index {k} outside 0..{len(self) - 1}")
        t0 = k * self.seq_len
        t1 = min(t0 + self.seq_len, self.steps_per_stream)
        return (np.ascontiguousarray(self.streams[:, t0:t1]),
                np.ascontiguousarray(self.streams[:, t0 + 1:t1 + 1]))

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next chunk; after the last chunk of an epoch the next epoch starts at 0.

        ``position == 0`` after a call means that call began a new epoch pass (and the
        caller should reset its hidden state)."""
        if self.position >= len(self):
            self.position, self.epoch = 0, self.epoch + 1
        batch = self.chunk(self.position)
        self.position += 1
        return batch

    @property
    def at_epoch_start(self) -> bool:
        """True when the next chunk is the first of an epoch (reset the hidden state)."""
        return self.position == 0 or self.position >= len(self)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The remaining chunks of the current epoch (all of them from a fresh position)."""
        if self.position >= len(self):
            self.position, self.epoch = 0, self.epoch + 1
        while self.position < len(self):
            batch = self.chunk(self.position)
            self.position += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """Where the batcher is in the stream, to resume exactly (``load_state_dict``)."""
        return {"position": int(self.position), "epoch": int(self.epoch),
                "batch_size": self.batch_size, "seq_len": self.seq_len,
                "steps_per_stream": self.steps_per_stream}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a position saved by ``state_dict()`` (same corpus and settings)."""
        for key in ("batch_size", "seq_len", "steps_per_stream"):
            if key in state and int(state[key]) != getattr(self, key):
                raise ValueError(f"StreamBatcher.load_state_dict: saved {key}={state[key]} "
                                 f"but this batcher has {getattr(self, key)}; resume with the "
                                 "same corpus, batch size and sequence length")
        self.position, self.epoch = int(state["position"]), int(state["epoch"])
