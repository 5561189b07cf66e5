"""Decoding a sequence from any model that maps (previous tokens, state) -> (logits, state):
greedy decoding, sampling (temperature, top-k) and beam search, all batched.

The model is given as a step function ``step(tokens, state) -> (logits, state)``: tokens is an
int array (N,) (the previous token of every row), logits (N, V) a Tensor or an array, state
whatever the model carries (None at first, or what the caller passes in). Beam search and
finished rows need to pick rows of the state: by default every Tensor / ndarray inside the
state (nested tuples, lists, dicts) is indexed along axis 0, so keep the batch first in the
state (an RNN's h_n (L, B, H) can be carried as (B, L, H)), or pass ``reorder(state, index)``.

Each function runs under ``no_grad`` and returns a ``Decoded``: tokens (N, L) (rows that ended
early padded with ``pad_token``, default the end token or 0), lengths (N,) (the tokens up to and
including the end token), scores (N,) (the summed log-probabilities of the tokens emitted).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from minigrad.engine import no_grad
from minigrad.random import resolve_rng
from minigrad.tensor import Tensor

__all__ = ["Decoded", "greedy_decode", "sample", "beam_search", "sample_logits",
           "select_state", "log_softmax"]

StepFn = Callable[[np.ndarray, Any], tuple[Any, Any]]


class Decoded(NamedTuple):
    """What a decoder returns: tokens (N, L), lengths (N,), scores (N,) (summed log-probs)."""
    tokens: np.ndarray
    lengths: np.ndarray
    scores: np.ndarray


def select_state(state: Any, index: np.ndarray) -> Any:
    """The rows ``index`` (axis 0) of every Tensor / ndarray in a nested state; other leaves
    (None, numbers, strings) are returned unchanged."""
    if isinstance(state, Tensor):
        return Tensor(np.take(state.data, index, axis=0))
    if isinstance(state, np.ndarray):
        return np.take(state, index, axis=0)
    if isinstance(state, tuple):
        return tuple(select_state(s, index) for s in state)
    if isinstance(state, list):
        return [select_state(s, index) for s in state]
    if isinstance(state, dict):
        return {k: select_state(v, index) for k, v in state.items()}
    return state


def log_softmax(logits: Any) -> np.ndarray:
    """log softmax over the last axis in float64 of a Tensor or array of logits."""
    z = np.asarray(logits.data if isinstance(logits, Tensor) else logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sample_logits(logits: Any, temperature: float = 1.0, top_k: int | None = None,
                  rng: Any = None) -> np.ndarray:
    """One token per row of logits (N, V): drawn from softmax(logits / temperature) restricted
    to the ``top_k`` largest (ties at the k-th value kept); ``temperature <= 0`` takes the
    argmax. ``rng``: a numpy Generator or an int seed (None: minigrad's default generator, which
    ``minigrad.manual_seed`` resets)."""
    logp = log_softmax(logits)
    if logp.ndim != 2:
        raise ValueError(f"sample_logits: logits must be (N, V), got shape {logp.shape}")
    if temperature <= 0:
        return logp.argmax(axis=-1)
    z = logp / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"sample_logits: top_k must be >= 1, got {top_k}")
        if top_k < z.shape[1]:
            kth = np.partition(z, -top_k, axis=-1)[:, -top_k][:, None]
            z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
    u = resolve_rng(rng, "sample_logits").random((z.shape[0], 1))
    # the first token whose cumulative probability passes u (never past the last kept one)
    return np.minimum((cdf < u).sum(axis=-1), z.shape[1] - 1)


def _start(start: Any, batch_size: int | None, op: str) -> np.ndarray:
    tokens = np.asarray(start)
    if tokens.ndim == 0:
        tokens = np.full(1 if batch_size is None else batch_size, int(tokens))
    if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise ValueError(f"{op}: start must be an int or an int array (N,), got "
                         f"{tokens.dtype} {tokens.shape}")
    return tokens.astype(np.int64)


def _check(op: str, logp: np.ndarray, n: int) -> None:
    if logp.ndim != 2 or logp.shape[0] != n:
        raise ValueError(f"{op}: the step function must return logits (N, V) = ({n}, V), "
                         f"got shape {logp.shape}")


def _decode_rows(op: str, step: StepFn, start: Any, state: Any, max_len: int,
                 end_token: int | None, pad_token: int | None, batch_size: int | None,
                 choose: Callable[[np.ndarray], np.ndarray]) -> Decoded:
    """The loop shared by greedy decoding and sampling: one token per row per step."""
    if max_len < 1:
        raise ValueError(f"{op}: max_len must be >= 1, got {max_len}")
    tokens = _start(start, batch_size, op)
    n = len(tokens)
    pad = pad_token if pad_token is not None else (end_token if end_token is not None else 0)
    out = np.full((n, max_len), pad, dtype=np.int64)
    lengths = np.full(n, max_len, dtype=np.int64)
    scores = np.zeros(n)
    done = np.zeros(n, dtype=bool)
    rows = np.arange(n)
    used = max_len
    with no_grad():
        for t in range(max_len):
            logits, state = step(tokens, state)
            logp = log_softmax(logits)
            _check(op, logp, n)
            nxt = np.where(done, pad, choose(logp))
            scores += np.where(done, 0.0, logp[rows, nxt])
            out[:, t] = nxt
            if end_token is not None:
                ended = ~done & (nxt == end_token)
                lengths[ended] = t + 1
                done |= ended
                if done.all():
                    used = t + 1
                    break
            tokens = nxt
    return Decoded(out[:, :used], lengths, scores)


def greedy_decode(step: StepFn, start: Any, state: Any = None, max_len: int = 50,
                  end_token: int | None = None, pad_token: int | None = None,
                  batch_size: int | None = None) -> Decoded:
    """Feed ``start`` (an int, or an int array (N,)), then at every step the most likely token,
    until each row has emitted ``end_token`` or ``max_len`` tokens (the module docstring says
    what ``step`` and the result are)."""
    return _decode_rows("greedy_decode", step, start, state, max_len, end_token, pad_token,
                        batch_size, lambda logp: logp.argmax(axis=-1))


def sample(step: StepFn, start: Any, state: Any = None, max_len: int = 50,
           end_token: int | None = None, temperature: float = 1.0, top_k: int | None = None,
           rng: Any = None, pad_token: int | None = None,
           batch_size: int | None = None) -> Decoded:
    """As ``greedy_decode``, but every token is drawn by ``sample_logits`` (temperature, top-k).
    ``rng``: a numpy Generator or an int seed (the same seed gives the same sequences), or
    None for minigrad's default generator."""
    gen = resolve_rng(rng, "sample")
    return _decode_rows("sample", step, start, state, max_len, end_token, pad_token,
                        batch_size, lambda logp: sample_logits(logp, temperature, top_k, gen))


def beam_search(step: StepFn, start: Any, state: Any = None, beam_width: int = 4,
                max_len: int = 50, end_token: int | None = None, length_penalty: float = 0.0,
                pad_token: int | None = None, batch_size: int | None = None,
                reorder: Callable[[Any, np.ndarray], Any] | None = None) -> Decoded:
    """Keep the ``beam_width`` most likely prefixes of every row; return each row's best
    hypothesis by its summed log-probability divided by length ** ``length_penalty`` (0: the
    raw sum; the length counts the end token). A hypothesis that emitted ``end_token`` stays
    in the beam with its score frozen. Width 1 is greedy decoding. The step function sees
    N * beam_width rows (row i's beams are rows i*K .. i*K+K-1); ``reorder(state, index)``
    picks state rows (default ``select_state``)."""
    if beam_width < 1:
        raise ValueError(f"beam_search: beam_width must be >= 1, got {beam_width}")
    if max_len < 1:
        raise ValueError(f"beam_search: max_len must be >= 1, got {max_len}")
    reorder = select_state if reorder is None else reorder
    first = _start(start, batch_size, "beam_search")
    n, k = len(first), beam_width
    pad = pad_token if pad_token is not None else (end_token if end_token is not None else 0)
    expand = np.repeat(np.arange(n), k)
    tokens, state = first[expand], reorder(state, expand) if state is not None else None
    scores = np.full((n, k), -np.inf)
    scores[:, 0] = 0.0                       # one live prefix per row at the start
    history = np.zeros((n, k, 0), dtype=np.int64)
    done = np.zeros((n, k), dtype=bool)
    lengths = np.zeros((n, k), dtype=np.int64)
    with no_grad():
        for _ in range(max_len):
            logits, state = step(tokens, state)
            logp = log_softmax(logits)
            _check("beam_search", logp, n * k)
            vocab = logp.shape[1]
            logp = logp.reshape(n, k, vocab)
            # 1. a finished hypothesis has one continuation, the pad token, at no cost
            logp[done] = -np.inf
            logp[done, pad] = 0.0
            # 2. the k best of the k * V extensions of every row (ties: the lower index)
            cand = (scores[:, :, None] + logp).reshape(n, k * vocab)
            top = np.argsort(-cand, axis=1, kind="stable")[:, :k]
            beam, tok = top // vocab, top % vocab
            scores = np.take_along_axis(cand, top, axis=1)
            history = np.concatenate([np.take_along_axis(history, beam[:, :, None], axis=1),
                                      tok[:, :, None]], axis=2)
            was_done = np.take_along_axis(done, beam, axis=1)
            lengths = np.take_along_axis(lengths, beam, axis=1) + ~was_done
            done = was_done | ((tok == end_token) if end_token is not None else False)
            # 3. carry the chosen beams' states
            state = reorder(state, (np.arange(n)[:, None] * k + beam).ravel())
            tokens = tok.ravel()
            if (done | ~np.isfinite(scores)).all():
                break
    # 4. each row's best hypothesis by the length-normalised score
    norm = np.where(np.isfinite(scores),
                    scores / np.maximum(lengths, 1) ** float(length_penalty), -np.inf)
    best = norm.argmax(axis=1)
    rows = np.arange(n)
    out = history[rows, best]
    out_len = lengths[rows, best]
    out = np.where(np.arange(out.shape[1])[None, :] < out_len[:, None], out, pad)
    used = int(out_len.max()) if end_token is not None else out.shape[1]
    return Decoded(out[:, :used], out_len, scores[rows, best])
