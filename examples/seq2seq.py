"""Translate with attention: English dates to Korean dates, or English number words to Korean.

"Tuesday, March 10, 1987" -> "1987년 3월 10일 화요일": the year moves from the end to the front
and the weekday from the front to the end, so the decoder has to learn where to look. The
pairs are generated offline (``babel``'s locale data; ``--task numbers`` uses ``num2words``:
"one thousand, two hundred and thirty-four" -> "천이백삼십사"); ``pip install
"minigrad-rnn[examples]"``.

Model, character by character: Embedding -> bidirectional GRU (or LSTM) run with each
source's true length (one fused node per direction) = the encoder states; a decoder GRU/LSTM
starts from the encoder's final states and reads the target shifted right (teacher forcing,
one fused call for the whole target); at every output step, attention (``nn.Attention``,
padding masked) over the encoder states gives a context vector, and tanh(W [h; context])
gives the scores of the next character. At test time the decoder runs one step at a time
(the layer's fused kernel on one step, or ``--decode-with cell``: the cell formula on the same
weights): greedy decoding and beam search (``minigrad.decoding``). Prints the exact-match
accuracy on held-out pairs (dates never seen in training) and a few translations, and with
matplotlib draws the attention matrices (source characters against output characters) to --out.

    python examples/seq2seq.py                    # dates
    python examples/seq2seq.py --task numbers
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (HelpFormatter, fmt_seconds, out_dir, pyplot,  # noqa: E402
                     seed_everything)
from _seq2seq_common import (EOS, PAD, AttentionDecoder, Tokens, decode,  # noqa: E402
                             exact_match, hangul_font, label, pad_batch, save_figure,
                             train_teacher_forced)
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn as nn  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.data import date_pairs, number_pairs  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--task", choices=["dates", "numbers"], default="dates",
                   help="English dates -> Korean dates (babel), or number words (num2words)")
    p.add_argument("--pairs", type=int, default=20000, help="pairs generated (80/10/10 split)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the generated pairs")
    p.add_argument("--cell", choices=["gru", "lstm"], default="gru")
    p.add_argument("--attention", choices=["additive", "dot", "general"], default="general")
    p.add_argument("--embed", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128, help="decoder size (encoder: half per "
                   "direction)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=5.0, help="gradient norm clipping")
    p.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="stop training after this many minutes")
    p.add_argument("--beam", type=int, default=4, help="beam width at test time (1: off)")
    p.add_argument("--length-penalty", type=float, default=0.6)
    p.add_argument("--beam-pairs", type=int, default=500,
                   help="test pairs decoded with beam search too (0: all)")
    p.add_argument("--decode-with", choices=["layer", "cell"], default="layer",
                   help="decoder steps: the recurrent layer on one step (fused kernel), or "
                   "the cell formula on its weights (primitive graph); same results")
    p.add_argument("--show", type=int, default=6, help="translations printed")
    p.add_argument("--plots", type=int, default=3, help="attention matrices drawn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/seq2seq", help="folder for the plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


class Translator(nn.Module):
    """Character encoder (bidirectional, with lengths) + attention decoder."""

    def __init__(self, src_vocab: int, tgt_vocab: int, args: argparse.Namespace,
                 rng: np.random.Generator):
        super().__init__()
        half = args.hidden // 2
        self.cell = args.cell
        self.src_embed = nn.Embedding(src_vocab, args.embed, padding_idx=PAD, rng=rng)
        self.encoder = (nn.GRU if args.cell == "gru" else nn.LSTM)(
            args.embed, half, batch_first=True, bidirectional=True, rng=rng)
        self.bridge = nn.Linear(2 * half, args.hidden, rng=rng)
        self.decoder = AttentionDecoder(tgt_vocab, args.embed, args.hidden, 2 * half,
                                        args.cell, args.attention, rng)

    def encode(self, src: np.ndarray, lengths: np.ndarray):
        """(decoder start state, encoder states (B, S, 2H/2), mask (B, S))."""
        out, final = self.encoder(self.src_embed(src), lengths=lengths)
        h_n = final[0] if self.cell == "lstm" else final             # (2, B, H/2)
        both = mg.concat([h_n[0], h_n[1]], axis=1)                    # (B, H)
        h0 = self.bridge(both).tanh()
        if self.cell == "lstm":
            h0 = (h0, mg.Tensor(np.zeros(h0.shape, dtype=np.float32)))
        mask = np.arange(src.shape[1])[None, :] < lengths[:, None]
        return h0, out, mask

    def forward(self, src: np.ndarray, lengths: np.ndarray, tgt_in: np.ndarray):
        """Teacher forcing: scores (B, T, V) and attention weights (B, T, S)."""
        h0, keys, mask = self.encode(src, lengths)
        scores, weights, _ = self.decoder(tgt_in, h0, keys, mask)
        return scores, weights


def make_pairs(args: argparse.Namespace):
    try:
        if args.task == "dates":
            return date_pairs(args.pairs, seed=args.data_seed)
        return number_pairs(args.pairs, seed=args.data_seed)
    except ImportError as e:
        raise SystemExit(f"seq2seq: {e}") from None


def translate(model: Translator, srcv: Tokens, tgtv: Tokens, sources: list[str],
              max_len: int, beam: int = 1, penalty: float = 0.0,
              batch_size: int = 256, cell: bool = False) -> list[list[str]]:
    """Decode every source (greedy, or beam search with ``beam`` > 1)."""
    out = []
    model.eval()
    with mg.no_grad():
        for i in range(0, len(sources), batch_size):
            src, lengths = pad_batch([srcv.encode(s) for s in sources[i:i + batch_size]])
            h0, keys, mask = model.encode(src, lengths)
            d = decode(model.decoder, h0, keys, mask, max_len, beam, penalty, cell)
            out.extend(tgtv.decode(row) for row in d.tokens)
    model.train()
    return out


def plot_attention(model: Translator, srcv: Tokens, tgtv: Tokens, pairs, predicted,
                   path: Path) -> str | None:
    """Attention weights of the decoder on its own (greedy) output, one panel per pair."""
    plt = pyplot()
    if plt is None or not pairs:
        return None
    has_font = hangul_font(plt)
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4.5), squeeze=False)
    model.eval()
    with mg.no_grad():
        for ax, (source, _), pred in zip(axes[0], pairs, predicted):
            src, lengths = pad_batch([srcv.encode(source)])
            tgt_in, _ = pad_batch([tgtv.encode(pred)], bos=True)
            _, weights = model(src, lengths, tgt_in)
            w = weights.data[0]                                     # (T, S)
            ax.imshow(w, cmap="viridis", aspect="auto", vmin=0, vmax=1)
            ax.set_xticks(range(len(source)), [label(c, True) for c in source], fontsize=7)
            ys = list(pred) + ["</s>"]
            ax.set_yticks(range(len(ys)), [label(c, has_font) for c in ys], fontsize=7)
            ax.set_xlabel("source")
            ax.set_ylabel("output")
    model.train()
    fig.suptitle("where the decoder looks (attention weights)")
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rng = seed_everything(args.seed)
    splits = make_pairs(args)
    train, val, test = splits.train, splits.val, splits.test
    srcv = Tokens([c for s, _ in train for c in s])
    tgtv = Tokens([c for _, t in train for c in t])
    # a character never seen in training cannot be read: such a held-out pair is kept and
    # scored (wrong), but its unknown characters are dropped from the input
    known = set(srcv.symbols)
    clean = [("".join(c for c in s if c in known), t) for s, t in test]
    max_len = max(len(t) for _, t in train) + 5
    model = Translator(len(srcv), len(tgtv), args, rng)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"task {args.task}: {len(train)} train / {len(val)} validation / {len(test)} test "
          f"pairs, e.g. {train[0][0]!r} -> {train[0][1]!r}")
    print(f"model: bidirectional {args.cell.upper()} encoder + {args.attention} attention "
          f"decoder, {n_params:,} parameters (backend: {mg.backend()})")
    src_ids = [srcv.encode(s) for s, _ in train]
    tgt_ids = [tgtv.encode(t) for _, t in train]

    def batch_loss(idx):
        src, lengths = pad_batch([src_ids[i] for i in idx])
        tgt, _ = pad_batch([tgt_ids[i] for i in idx], bos=True, eos=True)
        scores, _ = model(src, lengths, tgt[:, :-1])
        return F.cross_entropy(scores, tgt[:, 1:], ignore_index=PAD)

    def validate():
        sub = val[:500]
        acc = exact_match(translate(model, srcv, tgtv, [s for s, _ in sub], max_len),
                          [list(t) for _, t in sub])
        return acc, f"validation exact match (greedy, {len(sub)} pairs) {acc:.3f}"

    history, step, train_time = train_teacher_forced(model, opt, args, len(train), rng,
                                                     batch_loss, validate, "val_exact")
    targets = [list(t) for _, t in test]
    t0 = time.perf_counter()
    cell = args.decode_with == "cell"
    greedy = translate(model, srcv, tgtv, [s for s, _ in clean], max_len, cell=cell)
    greedy_time = time.perf_counter() - t0
    greedy_acc = exact_match(greedy, targets)
    result = {"history": history, "greedy_exact": greedy_acc, "train_seconds": train_time,
              "steps": step}
    print(f"\ntrained {step} steps in {fmt_seconds(train_time)}; test exact match "
          f"(greedy, {len(test)} held-out pairs): {greedy_acc:.4f} "
          f"[decoding {greedy_time:.1f}s]")
    if args.beam > 1:
        n = len(test) if args.beam_pairs <= 0 else min(args.beam_pairs, len(test))
        beamed = translate(model, srcv, tgtv, [s for s, _ in clean[:n]], max_len, args.beam,
                           args.length_penalty, cell=cell)
        result["beam_exact"] = exact_match(beamed, targets[:n])
        result["greedy_exact_beam_subset"] = exact_match(greedy[:n], targets[:n])
        print(f"beam search (width {args.beam}, length penalty {args.length_penalty}) on the "
              f"first {n}: {result['beam_exact']:.4f} (greedy on the same pairs: "
              f"{result['greedy_exact_beam_subset']:.4f})")
    result["examples"] = [(s, t, "".join(g)) for (s, t), g in zip(test[:args.show], greedy)]
    for s, t, g in result["examples"]:
        print(f"  {s:>45}  ->  {g}{'' if g == t else f'   (want {t})'}")
    wrong = [(s, t, "".join(g)) for (s, t), g in zip(test, greedy) if list(t) != g]
    for s, t, g in wrong[:3]:
        print(f"  miss: {s!r} -> {g!r}, want {t!r}")
    if args.plots > 0:
        path = plot_attention(model, srcv, tgtv, clean[:args.plots], greedy[:args.plots],
                              out_dir(args.out) / f"attention_{args.task}.png")
        result["plot"] = path
        if path:
            print(f"attention plot: {path}")
    return result


if __name__ == "__main__":
    main()
