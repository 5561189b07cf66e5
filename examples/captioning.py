"""Caption strips of handwritten digits with attention: one image in, a sequence of words out.

A strip shows 3-5 of scikit-learn's bundled 8x8 handwritten digits side by side (no download:
``pip install "minigrad-rnn[examples]"``); its caption is the digits' names, in English
("three one four") or with ``--lang ko`` in Korean ("삼 일 사"). The digit images are split
before strips are made, so the test strips show only handwriting never seen in training.

Model: the encoder cuts the strip into overlapping windows (8 columns wide, every 2 columns),
maps each window to a feature vector (Linear + tanh) and runs a bidirectional GRU over them
with each strip's true length: one region feature per window. An LSTM decoder starts from the
encoder's final states, reads the caption so far (teacher forcing while training) and at every
word attends over the regions (``nn.Attention``, padding masked). At test time it decodes
greedily or with beam search (``minigrad.decoding``). Prints word accuracy and whole-caption
exact match on held-out strips, and with matplotlib draws where the decoder looked for each
word (attention over the image) to --out.

    python examples/captioning.py
    python examples/captioning.py --lang ko
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (HelpFormatter, fmt_seconds, out_dir, pyplot,  # noqa: E402
                     seed_everything)
from _seq2seq_common import (PAD, AttentionDecoder, Tokens, decode, exact_match,  # noqa: E402
                             hangul_font, label, pad_batch, save_figure,
                             train_teacher_forced)
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn as nn  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.data import DIGIT_NAMES, DigitStrips, digit_strips  # noqa: E402

WINDOW, STRIDE = 8, 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--lang", choices=sorted(DIGIT_NAMES), default="en",
                   help="caption language")
    p.add_argument("--strips", type=int, nargs=3, default=[12000, 1000, 2000],
                   metavar=("TRAIN", "VAL", "TEST"), help="strips made from each split's images")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the split and the strips")
    p.add_argument("--attention", choices=["additive", "dot", "general"], default="additive")
    p.add_argument("--features", type=int, default=64, help="window feature size")
    p.add_argument("--hidden", type=int, default=128, help="decoder size (encoder: half per "
                   "direction)")
    p.add_argument("--embed", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--clip", type=float, default=5.0, help="gradient norm clipping")
    p.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="stop training after this many minutes")
    p.add_argument("--beam", type=int, default=3, help="beam width at test time (1: off)")
    p.add_argument("--show", type=int, default=5, help="captions printed")
    p.add_argument("--plots", type=int, default=3, help="strips drawn with their attention")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/captioning", help="folder for the plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def windows(images: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, 8, W) strips -> (B, R, 64) flattened windows and the number R of real ones per strip
    (the windows that lie inside the strip's digits)."""
    width = images.shape[2]
    starts = range(0, width - WINDOW + 1, STRIDE)
    regions = np.stack([images[:, :, s:s + WINDOW].reshape(len(images), -1) for s in starts],
                       axis=1)
    real = (8 * counts - WINDOW) // STRIDE + 1
    return np.ascontiguousarray(regions, dtype=np.float32), real.astype(np.int64)


class Captioner(nn.Module):
    """Window features -> bidirectional GRU (region features) -> attention LSTM decoder."""

    def __init__(self, vocab: int, args: argparse.Namespace, rng: np.random.Generator):
        super().__init__()
        half = args.hidden // 2
        self.project = nn.Linear(WINDOW * 8, args.features, rng=rng)
        self.encoder = nn.GRU(args.features, half, batch_first=True, bidirectional=True,
                              rng=rng)
        self.bridge = nn.Linear(2 * half, args.hidden, rng=rng)
        self.decoder = AttentionDecoder(vocab, args.embed, args.hidden, 2 * half, "lstm",
                                        args.attention, rng)

    def encode(self, images: np.ndarray, counts: np.ndarray):
        """(decoder start state (h, c), region features (B, R, H), mask (B, R))."""
        regions, real = windows(images, counts)
        feats = self.project(mg.Tensor(regions)).tanh()
        out, h_n = self.encoder(feats, lengths=real)
        h0 = self.bridge(mg.concat([h_n[0], h_n[1]], axis=1)).tanh()
        mask = np.arange(regions.shape[1])[None, :] < real[:, None]
        return (h0, mg.Tensor(np.zeros(h0.shape, dtype=np.float32))), out, mask

    def forward(self, images: np.ndarray, counts: np.ndarray, words_in: np.ndarray):
        h0, keys, mask = self.encode(images, counts)
        scores, weights, _ = self.decoder(words_in, h0, keys, mask)
        return scores, weights


def caption(model: Captioner, vocab: Tokens, strips: DigitStrips, beam: int = 1,
            batch_size: int = 500) -> list[list[str]]:
    out = []
    model.eval()
    with mg.no_grad():
        for i in range(0, len(strips), batch_size):
            sl = slice(i, i + batch_size)
            h0, keys, mask = model.encode(strips.images[sl], strips.counts[sl])
            d = decode(model.decoder, h0, keys, mask, max_len=8, beam=beam)
            out.extend(vocab.decode(row) for row in d.tokens)
    model.train()
    return out


def word_accuracy(predicted: list[list[str]], target: list[list[str]]) -> float:
    """Share of the target words that the caption has at the same position."""
    right = sum(sum(p == t for p, t in zip(ps, ts)) for ps, ts in zip(predicted, target))
    return right / sum(len(t) for t in target)


def plot_attention(model: Captioner, vocab: Tokens, strips: DigitStrips,
                   predicted: list[list[str]], n: int, path: Path) -> str | None:
    """For each of the first ``n`` strips, one panel per output word: the strip with the
    attention weights of that word spread over the columns its windows cover."""
    plt = pyplot()
    if plt is None or n <= 0:
        return None
    has_font = hangul_font(plt)
    cols = max(len(p) for p in predicted[:n]) + 1
    fig, axes = plt.subplots(n, cols, figsize=(2.4 * cols, 1.2 * n + 0.6), squeeze=False)
    model.eval()
    with mg.no_grad():
        for r in range(n):
            words = predicted[r]
            words_in, _ = pad_batch([vocab.encode(words)], bos=True)
            _, weights = model(strips.images[r:r + 1], strips.counts[r:r + 1], words_in)
            w = weights.data[0]                                      # (T, R)
            width = 8 * int(strips.counts[r])
            for k in range(cols):
                ax = axes[r, k]
                ax.axis("off")
                if k >= w.shape[0]:
                    continue
                heat = np.zeros(strips.images.shape[2])
                for j, a in enumerate(w[k]):                        # windows onto columns
                    heat[j * STRIDE:j * STRIDE + WINDOW] += a / WINDOW
                ax.imshow(strips.images[r][:, :width], cmap="gray_r", vmin=0, vmax=1)
                ax.imshow(np.tile(heat[:width], (8, 1)), cmap="hot", alpha=0.55,
                          vmin=0, vmax=max(heat.max(), 1e-6))
                word = words[k] if k < len(words) else "</s>"
                ax.set_title(label(word, has_font), fontsize=8)
    model.train()
    fig.suptitle("where the decoder looks for each word")
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rng = seed_everything(args.seed)
    try:
        train, val, test = digit_strips(tuple(args.strips), seed=args.data_seed)
    except ImportError as e:
        raise SystemExit(f"captioning: {e}") from None
    vocab = Tokens(DIGIT_NAMES[args.lang])
    train_caps = [c.split(" ") for c in train.captions(args.lang)]
    model = Captioner(len(vocab), args, rng)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{len(train)} train / {len(val)} validation / {len(test)} test strips of 3-5 digits "
          f"(test digits: images unseen in training); e.g. {train.captions(args.lang)[0]!r}")
    print(f"model: windows -> bidirectional GRU -> {args.attention} attention LSTM decoder, "
          f"{n_params:,} parameters (backend: {mg.backend()})")
    word_ids = [vocab.encode(c) for c in train_caps]
    val_caps = [c.split(" ") for c in val.captions(args.lang)]

    def batch_loss(idx):
        words, _ = pad_batch([word_ids[i] for i in idx], bos=True, eos=True)
        scores, _ = model(train.images[idx], train.counts[idx], words[:, :-1])
        return F.cross_entropy(scores, words[:, 1:], ignore_index=PAD)

    def validate():
        acc = word_accuracy(caption(model, vocab, val), val_caps)
        return acc, f"validation word accuracy {acc:.4f}"

    history, step, train_time = train_teacher_forced(model, opt, args, len(train), rng,
                                                     batch_loss, validate, "val_word_acc")
    targets = [c.split(" ") for c in test.captions(args.lang)]
    greedy = caption(model, vocab, test)
    result = {"history": history, "train_seconds": train_time, "steps": step,
              "word_accuracy": word_accuracy(greedy, targets),
              "exact_match": exact_match(greedy, targets)}
    print(f"\ntrained {step} steps in {fmt_seconds(train_time)}; {len(test)} held-out strips, "
          f"greedy: word accuracy {result['word_accuracy']:.4f}, exact match "
          f"{result['exact_match']:.4f}")
    if args.beam > 1:
        beamed = caption(model, vocab, test, beam=args.beam)
        result["beam_word_accuracy"] = word_accuracy(beamed, targets)
        result["beam_exact_match"] = exact_match(beamed, targets)
        print(f"beam search (width {args.beam}): word accuracy "
              f"{result['beam_word_accuracy']:.4f}, exact match {result['beam_exact_match']:.4f}")
    result["examples"] = [(" ".join(t), " ".join(g)) for t, g in zip(targets[:args.show], greedy)]
    for t, g in result["examples"]:
        print(f"  {g:<40}{'' if g == t else f' (want {t})'}")
    if args.plots > 0:
        n = min(args.plots, len(test))
        result["plot"] = plot_attention(model, vocab, test, greedy, n,
                                        out_dir(args.out) / f"attention_{args.lang}.png")
        if result["plot"]:
            print(f"attention plot: {result['plot']}")
    return result


if __name__ == "__main__":
    main()
