"""minigrad.decoding: greedy equals beam width 1; beam search finds the best sequence of a small
model whose sequences can all be enumerated; sampling with a seed is repeatable (and follows
the temperature / top-k distribution); end token and max length hold for every row."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from minigrad import Tensor
from minigrad.decoding import (beam_search, greedy_decode, log_softmax, sample, sample_logits,
                               select_state)

PRIME = 10007


class HistoryModel:
    """Logits that depend on the whole prefix: the state is a hash code of the tokens so far
    (one int per row) and each code has its own random row of logits."""

    def __init__(self, vocab: int, seed: int, sharpness: float = 2.0):
        self.vocab = vocab
        self.table = np.random.default_rng(seed).standard_normal((PRIME, vocab)) * sharpness

    def step(self, tokens, state):
        code = np.zeros(len(tokens), dtype=np.int64) if state is None else state
        code = (code * 31 + tokens + 1) % PRIME
        return Tensor(self.table[code]), code

    def logprob(self, start: int, seq) -> float:
        total, state, tok = 0.0, None, np.array([start])
        for t in seq:
            logits, state = self.step(tok, state)
            total += log_softmax(logits)[0, t]
            tok = np.array([t])
        return total


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_beam_width_one_is_greedy(penalty):
    model = HistoryModel(vocab=6, seed=0)
    start = np.array([1, 2, 3, 4, 5])
    g = greedy_decode(model.step, start, max_len=12, end_token=0)
    b = beam_search(model.step, start, beam_width=1, max_len=12, end_token=0,
                    length_penalty=penalty)
    np.testing.assert_array_equal(g.tokens, b.tokens)
    np.testing.assert_array_equal(g.lengths, b.lengths)
    np.testing.assert_allclose(g.scores, b.scores, rtol=1e-12)
    assert (g.lengths < 12).any() and (g.lengths >= 1).all()


@pytest.mark.parametrize("penalty", [0.0, 1.0])
def test_beam_search_finds_the_best_enumerated_sequence(penalty):
    vocab, end, max_len = 3, 0, 4
    model = HistoryModel(vocab=vocab, seed=5, sharpness=1.0)
    starts = np.array([1, 2])
    res = beam_search(model.step, starts, beam_width=vocab ** max_len, max_len=max_len,
                      end_token=end, length_penalty=penalty)
    small = beam_search(model.step, starts, beam_width=2, max_len=max_len, end_token=end,
                        length_penalty=penalty)
    greedy = greedy_decode(model.step, starts, max_len=max_len, end_token=end)
    for row, s in enumerate(starts):
        best, best_score = None, -np.inf
        for n in range(1, max_len + 1):
            for seq in itertools.product(range(vocab), repeat=n):
                if end in seq[:-1] or (n < max_len and seq[-1] != end):
                    continue                       # not a complete hypothesis
                score = model.logprob(s, seq) / n ** penalty
                if score > best_score:
                    best, best_score = seq, score
        got = tuple(res.tokens[row, :res.lengths[row]])
        assert got == best
        np.testing.assert_allclose(res.scores[row] / res.lengths[row] ** penalty, best_score,
                                   rtol=1e-10)

        def norm(d, r):
            return d.scores[r] / d.lengths[r] ** penalty
        assert norm(small, row) <= best_score + 1e-12 and norm(greedy, row) <= best_score + 1e-12


def test_beam_search_beats_greedy_on_a_trap():
    # first step: 1 (p .5) looks best, but every continuation after it is flat;
    # 2 (p .4) is followed by the end token with p ~ 1
    def step(tokens, state):
        t = 0 if state is None else state[0]
        logits = np.zeros((len(tokens), 3))
        if t == 0:
            logits[:] = np.log([0.1, 0.5, 0.4])
        else:
            logits[tokens == 2] = [10.0, -10.0, -10.0]
        return logits, np.full(len(tokens), t + 1)

    g = greedy_decode(step, 0, max_len=3, end_token=0)
    b = beam_search(step, 0, beam_width=2, max_len=3, end_token=0)
    assert list(b.tokens[0]) == [2, 0] and b.scores[0] > g.scores[0]
    assert g.tokens[0, 0] == 1


class CountdownModel:
    """Row r emits token 1 until step target[r], then the end token 0 (strongly)."""

    def __init__(self, targets):
        self.targets = np.asarray(targets)

    def step(self, tokens, state):
        rows, t = state
        logits = np.full((len(tokens), 4), -5.0)
        logits[:, 1] = 5.0
        at_end = t >= self.targets[rows]
        logits[at_end, 1], logits[at_end, 0] = -5.0, 5.0
        return logits, (rows, t + 1)

    def reorder(self, state, index):
        return (state[0][index], state[1])


@pytest.mark.parametrize("how", ["greedy", "sample", "beam"])
def test_end_token_and_max_len_per_row(how):
    targets = [0, 2, 5, 9, 20]          # row 0 ends at once; rows 3 and 4 run into max_len
    max_len = 7
    model = CountdownModel(targets)
    kw = dict(state=(np.arange(5), 0), max_len=max_len, end_token=0, pad_token=3)
    if how == "greedy":
        d = greedy_decode(model.step, np.array([2] * 5), **kw)
    elif how == "sample":
        d = sample(model.step, np.array([2] * 5), temperature=0.5, rng=0, **kw)
    else:
        d = beam_search(model.step, np.array([2] * 5), beam_width=3, reorder=model.reorder,
                        **kw)
    assert d.tokens.shape == (5, max_len)
    np.testing.assert_array_equal(d.lengths, [1, 3, 6, 7, 7])
    for r, n in enumerate(d.lengths):
        row = d.tokens[r]
        if targets[r] < max_len:
            assert row[n - 1] == 0 and (row[:n - 1] == 1).all() and (row[n:] == 3).all()
        else:
            assert (row == 1).all()


def test_decoding_stops_early_when_every_row_ended():
    d = greedy_decode(CountdownModel([1, 2]).step, np.array([2, 2]), (np.arange(2), 0),
                      max_len=50, end_token=0)
    assert d.tokens.shape == (2, 3)


def test_sampling_with_a_seed_is_repeatable():
    model = HistoryModel(vocab=8, seed=1, sharpness=0.5)
    start = np.arange(4)
    a = sample(model.step, start, max_len=30, temperature=1.0, rng=123)
    b = sample(model.step, start, max_len=30, temperature=1.0, rng=123)
    c = sample(model.step, start, max_len=30, temperature=1.0, rng=124)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert (a.tokens != c.tokens).any()
    g = greedy_decode(model.step, start, max_len=30)
    for kw in (dict(temperature=0.0), dict(top_k=1)):
        np.testing.assert_array_equal(sample(model.step, start, max_len=30, rng=9, **kw).tokens,
                                      g.tokens)


def test_sample_logits_follows_temperature_and_top_k():
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4]]))
    n = 40000
    draws = sample_logits(np.repeat(logits, n, axis=0), temperature=0.5, top_k=2, rng=7)
    freq = np.bincount(draws, minlength=4) / n
    p = np.array([0.0, 0.0, 0.3 ** 2, 0.4 ** 2])
    p /= p.sum()                        # temperature 0.5 squares, top-2 keeps the two largest
    np.testing.assert_allclose(freq, p, atol=0.015)
    assert freq[0] == 0 and freq[1] == 0
    with pytest.raises(ValueError, match="top_k"):
        sample_logits(logits, top_k=0)


def test_select_state_picks_rows_of_nested_state():
    h = Tensor(np.arange(6.0).reshape(3, 2))
    state = {"h": (h, np.arange(3)), "n": 5, "none": None}
    out = select_state(state, np.array([2, 2, 0]))
    np.testing.assert_array_equal(out["h"][0].data, [[4, 5], [4, 5], [0, 1]])
    np.testing.assert_array_equal(out["h"][1], [2, 2, 0])
    assert out["n"] == 5 and out["none"] is None


def test_bad_step_output_is_reported():
    with pytest.raises(ValueError, match=r"greedy_decode: the step function must return"):
        greedy_decode(lambda tok, s: (np.zeros((len(tok) + 1, 3)), s), np.array([0, 1]))
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(lambda tok, s: (np.zeros((len(tok), 3)), s), 0, beam_width=0)
