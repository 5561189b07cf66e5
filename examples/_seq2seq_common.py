"""Pieces shared by the sequence-to-sequence examples (seq2seq.py, captioning.py): a token
vocabulary with <pad>/<s>/</s>, padding, the attention decoder (a recurrent layer run over the
whole target with teacher forcing, or one step at a time for decoding, attending over the
encoder's states: Luong's attention after the recurrent step), exact-match scoring and
attention plots. Nothing here is part of the minigrad library."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import minigrad as mg
import minigrad.nn as nn
from minigrad.decoding import Decoded, beam_search, greedy_decode
from minigrad.nn.rnn_cells import gru_step, lstm_step
from minigrad.nn.utils import clip_grad_norm_

from _common import Progress, batches, fmt_seconds

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<s>", "</s>"]


class Tokens:
    """Symbols (characters or words) <-> ids; ids 0, 1, 2 are <pad>, <s>, </s>."""

    def __init__(self, symbols: Sequence[str]):
        self.symbols = SPECIALS + sorted(set(symbols) - set(SPECIALS))
        self.index = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, seq: Sequence[str]) -> list[int]:
        return [self.index[s] for s in seq]

    def decode(self, ids: Sequence[int]) -> list[str]:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i > EOS:
                out.append(self.symbols[i])
        return out


def pad_batch(seqs: Sequence[Sequence[int]], bos: bool = False, eos: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """(ids (B, T) padded with PAD, lengths (B,)), optionally with <s> before / </s> after."""
    seqs = [([BOS] if bos else []) + list(s) + ([EOS] if eos else []) for s in seqs]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.full((len(seqs), int(lengths.max())), PAD, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lengths


class AttentionDecoder(nn.Module):
    """Embedding -> GRU/LSTM -> attention over the encoder states -> tanh(Linear[h; context])
    -> Linear scores. forward() reads a whole target with teacher forcing (one fused call of
    the recurrent layer); cell_step() advances every row by one token with the cell formula on
    the same weights (for minigrad.decoding)."""

    def __init__(self, vocab: int, embed: int, hidden: int, key_size: int, cell: str,
                 kind: str, rng: np.random.Generator):
        super().__init__()
        self.cell, self.hidden = cell, hidden
        self.embed = nn.Embedding(vocab, embed, padding_idx=PAD, rng=rng)
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(embed, hidden, batch_first=True,
                                                          rng=rng)
        self.attn = nn.Attention(hidden, key_size, kind=kind, rng=rng)
        self.combine = nn.Linear(hidden + key_size, hidden, rng=rng)
        self.head = nn.Linear(hidden, vocab, rng=rng)

    def _layer_state(self, state: Any) -> Any:
        # decoding keeps the state batch-first (B, H); the layer wants (1, B, H)
        if self.cell == "lstm":
            return tuple(s.reshape(1, *s.shape) for s in state)
        return state.reshape(1, *state.shape)

    def _batch_state(self, state: Any) -> Any:
        if self.cell == "lstm":
            return tuple(s.reshape(s.shape[1:]) for s in state)
        return state.reshape(state.shape[1:])

    def forward(self, tokens: np.ndarray, state: Any, keys: mg.Tensor, mask: np.ndarray,
                projected: mg.Tensor | None = None) -> tuple[mg.Tensor, mg.Tensor, Any]:
        """tokens (B, T) -> scores (B, T, V), attention weights (B, T, S), new state."""
        out, new_state = self.rnn(self.embed(tokens), self._layer_state(state))   # (B, T, H)
        context, weights = self.attn(out, keys, mask=mask, projected_keys=projected)
        mixed = self.combine(mg.concat([out, context], axis=2)).tanh()
        return self.head(mixed), weights, self._batch_state(new_state)

    def cell_step(self, tokens: np.ndarray, state: Any, keys: mg.Tensor, mask: np.ndarray,
                  projected: mg.Tensor | None = None) -> tuple[mg.Tensor, mg.Tensor, Any]:
        """One step for every row, with the cell formula (minigrad.nn.rnn_cells) on the
        recurrent layer's own weights: tokens (B,) -> scores (B, V), weights (B, S), state."""
        r = self.rnn
        weights = (r.weight_ih_l0, r.weight_hh_l0, r.bias_ih_l0, r.bias_hh_l0)
        x = self.embed(tokens)                                              # (B, E)
        if self.cell == "lstm":
            h, c = lstm_step(x, state[0], state[1], *weights)
            new_state: Any = (h, c)
        else:
            h = new_state = gru_step(x, state, *weights)
        context, attn = self.attn(h, keys, mask=mask, projected_keys=projected)
        mixed = self.combine(mg.concat([h, context], axis=1)).tanh()
        return self.head(mixed), attn, new_state

    def step_fn(self, cell: bool = False):
        """A step function for minigrad.decoding: the recurrent layer run for one step (its
        fused kernel), or with ``cell=True`` the cell formula on the same weights (the
        primitive graph; same numbers, more graph nodes per step). Its state carries the
        keys and the mask (batch first, so beam search can pick rows)."""
        def layer_step(tokens: np.ndarray, st: dict) -> tuple[mg.Tensor, dict]:
            scores, _, new = self(tokens[:, None], st["h"], st["keys"], st["mask"],
                                  st["proj"])
            return scores.reshape(len(tokens), scores.shape[-1]), dict(st, h=new)

        def cell_step(tokens: np.ndarray, st: dict) -> tuple[mg.Tensor, dict]:
            scores, _, new = self.cell_step(tokens, st["h"], st["keys"], st["mask"],
                                            st["proj"])
            return scores, dict(st, h=new)
        return cell_step if cell else layer_step

    def start_state(self, h0: Any, keys: mg.Tensor, mask: np.ndarray) -> dict:
        return {"h": h0, "keys": keys, "mask": mask, "proj": self.attn.project_keys(keys)}


def decode(decoder: AttentionDecoder, h0: Any, keys: mg.Tensor, mask: np.ndarray,
           max_len: int, beam: int = 1, length_penalty: float = 0.0,
           cell: bool = False) -> Decoded:
    """Greedy (beam 1) or beam-search decoding of every row from <s> to </s>."""
    state = decoder.start_state(h0, keys, mask)
    step = decoder.step_fn(cell)
    start = np.full(keys.shape[0], BOS, dtype=np.int64)
    if beam <= 1:
        return greedy_decode(step, start, state, max_len=max_len, end_token=EOS)
    return beam_search(step, start, state, beam_width=beam, max_len=max_len, end_token=EOS,
                       length_penalty=length_penalty)


# ---- plots ----------------------------------------------------------------------------------
_INITIAL = ["g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k",
            "t", "p", "h"]
_MEDIAL = ["a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u",
           "wo", "we", "wi", "yu", "eu", "ui", "i"]
_FINAL = ["", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m",
          "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t"]


def romanize(text: str) -> str:
    """Hangul syllables spelled in Latin letters (roughly the Revised Romanization), for plot
    labels when no installed font has Hangul glyphs."""
    out = []
    for ch in text:
        code = ord(ch) - 0xAC00
        if 0 <= code < 11172:
            out.append(_INITIAL[code // 588] + _MEDIAL[code % 588 // 28] + _FINAL[code % 28])
        else:
            out.append(ch)
    return "".join(out)


def hangul_font(plt: Any) -> bool:
    """Whether matplotlib has a font with Hangul glyphs (then Korean labels are drawn)."""
    from matplotlib import font_manager
    for f in font_manager.fontManager.ttflist:
        if any(k in f.name for k in ("Nanum", "Noto Sans CJK", "Noto Sans KR", "Malgun",
                                     "AppleGothic", "Baekmuk", "UnDotum")):
            plt.rcParams["font.family"] = f.name
            return True
    return False


def label(symbol: str, has_font: bool) -> str:
    symbol = "_" if symbol == " " else symbol
    return symbol if has_font else romanize(symbol)


def exact_match(predicted: Sequence[Sequence[str]], target: Sequence[Sequence[str]]) -> float:
    return float(np.mean([list(p) == list(t) for p, t in zip(predicted, target)]))


def save_figure(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return str(path)


def train_teacher_forced(model: nn.Module, opt: Any, args: Any, n_train: int,
                         rng: np.random.Generator, batch_loss: Callable[[np.ndarray], mg.Tensor],
                         validate: Callable[[], tuple[float, str]],
                         val_key: str) -> tuple[dict, int, float]:
    """Both examples' training loop: shuffled batches of ``args.batch_size`` for
    ``args.epochs`` epochs, ``batch_loss(indices)`` the teacher-forced loss of one batch, Adam's
    learning rate decaying linearly to 10%, gradient clipping, a progress bar, ``validate()`` ->
    (value, text) after each epoch, and a time limit of ``args.time_limit`` minutes.
    Returns (history, steps, seconds)."""
    total = args.epochs * -(-n_train // args.batch_size)
    history: dict[str, list] = {"loss": [], val_key: []}
    start = time.perf_counter()
    deadline = None if args.time_limit is None else start + 60 * args.time_limit
    bar = Progress(total, desc="train", enabled=not args.no_progress, unit="step")
    step, smooth, stopped = 0, None, False
    for epoch in range(args.epochs):
        for idx in batches(n_train, args.batch_size, rng):
            for group in opt.param_groups:                  # linear decay to 10%
                group["lr"] = args.lr * (1 - 0.9 * step / max(1, total))
            loss = batch_loss(idx)
            opt.zero_grad()
            loss.backward()
            clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            step += 1
            smooth = loss.item() if smooth is None else 0.95 * smooth + 0.05 * loss.item()
            history["loss"].append(loss.item())
            bar.update(1, loss=smooth)
            if deadline is not None and time.perf_counter() > deadline:
                stopped = True
                break
        value, text = validate()
        history[val_key].append(value)
        bar.write(f"epoch {epoch + 1}: loss {smooth:.4f}, {text}  "
                  f"[{fmt_seconds(time.perf_counter() - start)}]")
        if stopped:
            bar.write(f"time limit reached after {step} steps")
            break
    bar.close()
    return history, step, time.perf_counter() - start
