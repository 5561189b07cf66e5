"""Classify texts (movie reviews, Korean sentences, any labelled CSV) with a bidirectional GRU
or LSTM, next to a TF-IDF logistic-regression baseline.

Embedding -> bidirectional GRU/LSTM run with each text's true length -> mean and max pooling
over the real (unpadded) steps -> Linear. Tokens are words (English) or characters (Korean:
one Hangul syllable per token; ``--tokens auto`` picks characters when most letters are
Hangul, Kana, Han or Thai). Hyper-parameters come from a preset: ``large`` for long reviews by
the ten thousand (IMDB), ``small`` for a few thousand short sentences (more epochs, early
stopping on the validation loss, character-bigram embeddings added to the
characters, token dropout, and an ensemble of five networks whose class probabilities are
averaged); ``--preset auto`` picks by the size of the training set, and any flag given on the
command line wins over the preset. The run prints what it chose. Batches group texts of
similar length; the epoch with the best validation accuracy is kept. With scikit-learn
installed, a TF-IDF logistic regression (word 1-2-grams and/or character 1-3-grams) is fitted
on the same training split and scored on the same test set.

    python examples/classify.py --csv ../shared/data/klue_sts_dev_sources.csv   # Korean
    python examples/classify.py --dataset kolaw   # the Korean constitution by chapter
    python examples/classify.py --dataset imdb --preset large    # = examples/sentiment.py
    python examples/classify.py --csv news.csv --text-column title --label-column topic
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (HelpFormatter, LazyBatches, fmt_seconds, loss_plot, out_dir,  # noqa: E402
                     seed_everything)
from _models import (CELLS, LinearDecay, TextClassifier, encode, pad_grams,  # noqa: E402
                     predict_proba)
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.data import (Splits, Vocab, bucket_batches, choose_tokens,  # noqa: E402
                           get_tokenizer, load_constitution_chapters, load_csv_splits,
                           load_movie_reviews, ngram_tokens, pad_sequences)
from minigrad.train import fit  # noqa: E402

# Values of the flags a preset sets (a flag given on the command line wins).
PRESETS: dict[str, dict[str, Any]] = {
    # IMDB: 18,750 training reviews of ~250 words; three epochs are enough
    "large": dict(embed=128, hidden=128, dropout=0.3, epochs=3, batch_size=64, lr=3e-3,
                  max_len=400, vocab_size=20000, min_freq=2, patience=None, ngrams=1,
                  token_dropout=0.0, weight_decay=0.0, ensemble=1, lm_weight=0.0),
    # a few thousand short sentences: more passes, early stopping, a higher rate; for
    # characters also the embeddings of the character bigrams, 10% of the tokens replaced by
    # <unk> in training, and five networks averaged (README "Korean text": what each adds)
    "small": dict(embed=128, hidden=128, dropout=0.3, epochs=30, batch_size=32, lr=1e-2,
                  max_len=200, vocab_size=20000, min_freq=1, patience=6, ngrams=2,
                  token_dropout=0.1, weight_decay=0.0, ensemble=5, lm_weight=0.0),
}
AUTO_LARGE = 10_000   # --preset auto: 'large' from this many training texts on


def parse_args(argv: list[str] | None, defaults: dict[str, Any] | None = None,
               prog: str | None = None, doc: str | None = None) -> argparse.Namespace:
    """The command line; ``defaults`` replaces argument defaults (sentiment.py's preset)."""
    p = argparse.ArgumentParser(prog=prog, description=(doc or __doc__).split("\n\n")[0],
                                formatter_class=HelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=["imdb", "rt", "kolaw"], default="imdb",
                   help="IMDB reviews or Rotten Tomatoes sentences (movie-reviews package), or "
                   "the Korean constitution's paragraphs by chapter (konlpy package)")
    d.add_argument("--csv", default=None, help="use this CSV instead of --dataset")
    d.add_argument("--text-column", default="text", help="CSV column with the text")
    d.add_argument("--label-column", default="label", help="CSV column with the label")
    d.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the data used for validation (best epoch, early stopping)")
    d.add_argument("--test-fraction", type=float, default=0.2, help="share held out for the test")
    d.add_argument("--split-seed", type=int, default=0,
                   help="seed of the train/validation/test split (kept apart from --seed, "
                   "so runs with different seeds are scored on the same test set)")
    d.add_argument("--tokens", choices=["auto", "words", "chars"], default="auto",
                   help="word tokens, characters (Hangul syllables), or chosen by the script "
                   "of the training texts")
    d.add_argument("--ngrams", type=int, help="with character tokens: add to each character "
                   "the embeddings of the 2..N characters ending there (subword pieces; 1: off)")
    d.add_argument("--max-len", type=int, help="tokens kept per text")
    d.add_argument("--truncate", choices=["end", "start"], default="start",
                   help="drop the end or the start of texts longer than --max-len")
    d.add_argument("--vocab-size", type=int, help="tokens kept, incl. <pad> and <unk>")
    d.add_argument("--min-freq", type=int, help="rarer training tokens become <unk>")
    m = p.add_argument_group("model")
    m.add_argument("--preset", choices=["auto", *PRESETS], default="auto",
                   help=f"hyper-parameter set; auto: 'large' from {AUTO_LARGE:,} training "
                   "texts on, else 'small'")
    m.add_argument("--cell", choices=sorted(CELLS), default="gru", help="recurrent layer")
    m.add_argument("--embed", type=int, help="token embedding size")
    m.add_argument("--hidden", type=int, help="hidden units per direction")
    m.add_argument("--unidirectional", action="store_true", help="one direction only")
    m.add_argument("--pooling", choices=["meanmax", "mean", "max", "last"], default="meanmax",
                   help="how the outputs over the real steps become one vector")
    m.add_argument("--dropout", type=float, help="on embeddings and features")
    m.add_argument("--token-dropout", type=float,
                   help="share of training tokens replaced by <unk> in each batch")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, help="passes over the training set (at most)")
    t.add_argument("--batch-size", type=int, help="texts per step")
    t.add_argument("--lr", type=float, help="Adam learning rate (decays linearly to 30%%)")
    t.add_argument("--weight-decay", type=float, help="AdamW's decoupled weight decay")
    t.add_argument("--clip", type=float, default=5.0, help="gradient-norm clipping")
    t.add_argument("--lm-weight", type=float, help="weight of an auxiliary loss: each "
                   "direction of the RNN also predicts the next token it will read (0: off)")
    t.add_argument("--ensemble", type=int, help="train this many networks (seeds --seed, "
                   "--seed+1, ...) and average their class probabilities")
    t.add_argument("--patience", type=int,
                   help="stop after this many epochs without a lower validation loss "
                   "(0: never stop early)")
    t.add_argument("--limit", type=int, default=None,
                   help="use only this many training examples (quick experiments)")
    t.add_argument("--baseline", choices=["auto", "words", "chars", "both", "none"],
                   default="auto", help="TF-IDF logistic regression(s) to fit beside the "
                   "network (needs scikit-learn); auto: both on small data, else the token kind")
    t.add_argument("--out", default="runs/classify", help="folder for the trained model")
    t.add_argument("--seed", type=int, default=0, help="seed of weights, dropout and batches")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    if defaults:
        p.set_defaults(**defaults)
    return p.parse_args(argv)


def resolve(args: argparse.Namespace, n_train: int, texts: list[str]) -> str:
    """Fill the flags left unset from the preset and the token kind; return a summary."""
    preset = args.preset
    if preset == "auto":
        preset = "large" if n_train >= AUTO_LARGE else "small"
    chosen = []
    for key, value in PRESETS[preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
        else:
            chosen.append(key)
    if args.patience == 0:
        args.patience = None
    how = "given" if args.tokens != "auto" else "detected from the script"
    if args.tokens == "auto":
        args.tokens = choose_tokens(texts)
    if args.baseline == "auto":
        args.baseline = "both" if sum(len(t) for t in texts) <= 2_000_000 else args.tokens
    args.preset = preset
    keys = ["tokens", *PRESETS[preset]]
    shown = ", ".join(f"{k}={getattr(args, k)}" for k in keys)
    own = f"; set on the command line: {', '.join(chosen)}" if chosen else ""
    return f"settings: preset {preset!r} ({args.preset_why}), tokens {how}: {shown}{own}"


def load_splits(args: argparse.Namespace, prog: str) -> tuple[Splits, str]:
    """The seeded train/validation/test split of --csv or --dataset, and a name for it; a
    missing package or file, or a bad column, ends the run with a message naming it."""
    try:
        if args.csv:
            return (load_csv_splits(args.csv, args.text_column, args.label_column,
                                    args.val_fraction, args.test_fraction, args.split_seed),
                    Path(args.csv).name)
        if args.dataset == "kolaw":
            return (load_constitution_chapters(args.val_fraction, args.test_fraction,
                                               args.split_seed), "kolaw constitution")
        return (load_movie_reviews(args.dataset, args.val_fraction, args.test_fraction,
                                   args.split_seed), args.dataset.upper())
    except (ModuleNotFoundError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"{prog}: {e}") from None


def tfidf_baselines(kinds: str, train: Any, test: Any) -> dict[str, float]:
    """Test accuracy of TF-IDF + logistic regression per feature kind ('words': word 1-2-grams
    from minigrad's tokenizer; 'chars': character 1-3-grams within word boundaries), fitted on
    the training split only. Empty when scikit-learn is missing or ``kinds`` is 'none'."""
    if kinds == "none":
        return {}
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print('baseline: scikit-learn is not installed (pip install "minigrad-rnn[baseline]")')
        return {}
    vectorizers = {
        "words": lambda: TfidfVectorizer(tokenizer=get_tokenizer("words"), token_pattern=None,
                                         lowercase=False, ngram_range=(1, 2),
                                         sublinear_tf=True, min_df=1),
        "chars": lambda: TfidfVectorizer(preprocessor=lambda t: "".join(
                                         get_tokenizer("chars")(t)), analyzer="char_wb",
                                         ngram_range=(1, 3), sublinear_tf=True),
    }
    scores = {}
    for kind in (["words", "chars"] if kinds == "both" else [kinds]):
        vec = vectorizers[kind]()
        clf = LogisticRegression(C=10.0, max_iter=2000)
        clf.fit(vec.fit_transform(train.texts), train.labels)
        scores[kind] = float((clf.predict(vec.transform(test.texts)) == test.labels).mean())
    return scores


def main(argv: list[str] | None = None, defaults: dict[str, Any] | None = None,
         prog: str = "classify", doc: str | None = None) -> dict:
    """Train and test the classifier (and the baselines) as the command line says; returns
    the accuracies, history, chosen preset and tokens, test predictions and the model."""
    args = parse_args(argv, defaults, prog, doc)
    t0 = time.perf_counter()
    rng = seed_everything(args.seed)
    splits, name = load_splits(args, prog)
    train = splits.train
    if args.limit:
        keep = np.sort(rng.permutation(len(train))[:args.limit])   # a random subset
        train = train.subset(keep)
    args.preset_why = ("chosen" if args.preset != "auto" else
                       f"{len(train):,} training texts {'>=' if len(train) >= AUTO_LARGE else '<'}"
                       f" {AUTO_LARGE:,}")
    print(resolve(args, len(train), train.texts))
    tokenize = get_tokenizer(args.tokens)
    tokens = [tokenize(t) for t in train.texts]
    vocab = Vocab.build(tokens, min_freq=args.min_freq, max_size=args.vocab_size)
    train_seqs = encode(tokens, vocab, args.max_len, args.truncate)
    val_tokens = [tokenize(t) for t in splits.val.texts]
    test_tokens = [tokenize(t) for t in splits.test.texts]
    val_seqs = encode(val_tokens, vocab, args.max_len, args.truncate)
    test_seqs = encode(test_tokens, vocab, args.max_len, args.truncate)
    ngram_vocab, gram = None, [None, None, None]
    if args.tokens == "chars" and args.ngrams > 1:
        # one vocabulary for the 2..N-grams ending at each character; per text, one id list
        # per order (stacked into a (B, T, N-1) batch)
        orders = range(2, args.ngrams + 1)
        grams = [[[ngram_tokens(t, n) for n in orders] for t in tl]
                 for tl in (tokens, val_tokens, test_tokens)]
        ngram_vocab = Vocab.build([g for per_text in grams[0] for g in per_text], min_freq=2,
                                  max_size=args.vocab_size)
        gram = [[encode(per_text, ngram_vocab, args.max_len, args.truncate)
                 for per_text in g] for g in grams]
    classes = train.classes
    lengths = np.array([len(s) for s in train_seqs])
    unk = np.mean([i == vocab.unk_index for s in test_seqs for i in s])
    print(f"{name}: train {len(train)}, validation {len(splits.val)}, test "
          f"{len(splits.test)}; classes {classes}; vocabulary {len(vocab)} {args.tokens} "
          f"(unknown in test: {unk:.1%}); mean length {lengths.mean():.0f} tokens (max "
          f"{args.max_len}); prepared in {time.perf_counter() - t0:.1f}s")

    lengths_val = np.array([len(s) for s in val_seqs])

    def train_member(k: int) -> tuple[TextClassifier, dict, float, np.ndarray]:
        """Train network ``k`` of the ensemble (seed ``--seed`` + k; network 0 draws from the
        generator the run started with); return it with the weights of its best epoch, its
        history, its best validation accuracy and its test-class probabilities."""
        seed = args.seed + k
        mrng = rng if k == 0 else seed_everything(seed)
        model = TextClassifier(len(vocab), len(classes), args.cell, args.embed, args.hidden,
                               not args.unidirectional, args.pooling, args.dropout, mrng,
                               len(ngram_vocab) if ngram_vocab else 0, args.lm_weight > 0)
        if k == 0:
            plus = (f" + {'2-gram' if args.ngrams == 2 else f'2..{args.ngrams}-gram'} "
                    f"Embedding({len(ngram_vocab)})" if ngram_vocab else "")
            print(f"model: Embedding({len(vocab)}, {args.embed}){plus} -> "
                  f"{'Bi' if not args.unidirectional else ''}{args.cell.upper()}"
                  f"({args.hidden}) -> {args.pooling} pooling -> Linear; "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters"
                  + (f"; an ensemble of {args.ensemble} such networks (seeds {args.seed}.."
                     f"{args.seed + args.ensemble - 1}), class probabilities averaged"
                     if args.ensemble > 1 else ""))
        if args.ensemble > 1:
            print(f"network {k + 1} of {args.ensemble} (seed {seed})")
        opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
        sched = LinearDecay(opt, args.epochs, decay=0.7)   # linear decay to 30% over the run
        # accuracy is counted on the side: fit's loss_fn sees every batch, training ones in
        # train mode and validation ones (inside fit's evaluate) in eval mode
        counts = {"train": [0, 0], "val": [0, 0]}
        drop_rng = np.random.default_rng(seed + 7)

        def make_batch(seqs: list[list[int]], grams: list[list[list[int]]] | None,
                       labels: np.ndarray,
                       token_dropout: float = 0.0) -> Callable[[np.ndarray], tuple[Any, ...]]:
            def make(idx: np.ndarray) -> tuple[Any, ...]:
                x, lens = pad_sequences([seqs[i] for i in idx])
                g = None if grams is None else pad_grams([grams[i] for i in idx])
                if token_dropout > 0:   # real tokens become <unk> at random (not the padding)
                    hit = (drop_rng.random(x.shape) < token_dropout) & (x != vocab.pad_index)
                    x = np.where(hit, vocab.unk_index, x)
                    if g is not None:
                        g = np.where(hit[:, :, None], vocab.unk_index, g)
                return x, lens, g, labels[idx]
            return make

        def train_batches(epoch: int) -> LazyBatches:   # epoch counts from 0 in fit
            counts["train"] = [0, 0]
            return LazyBatches(bucket_batches(lengths, args.batch_size, shuffle=True,
                                              seed=seed * 1000 + epoch + 1),
                               make_batch(train_seqs, gram[0], train.labels,
                                          args.token_dropout))

        val_batches = LazyBatches(bucket_batches(lengths_val, 256, shuffle=False),
                                  make_batch(val_seqs, gram[1], splits.val.labels))

        def loss_fn(model: TextClassifier, batch: tuple[np.ndarray, ...]) -> mg.Tensor:
            x, lens, g, y = batch
            logits = model(x, lens, g)
            c = counts["train" if model.training else "val"]
            c[0] += int((logits.data.argmax(axis=1) == y).sum())
            c[1] += len(y)
            loss = F.cross_entropy(logits, y)
            if model.training and args.lm_weight > 0:
                loss = loss + model.lm_loss(x) * args.lm_weight
            return loss

        best = {"key": (-1.0, 0.0), "state": None}
        start = time.perf_counter()

        def epoch_end(epoch: int, fit_history: dict) -> dict:
            """After each epoch: the accuracies counted on the side; keep the best epoch's
            weights (highest validation accuracy, ties to the lower validation loss)."""
            train_acc = counts["train"][0] / max(counts["train"][1], 1)
            val_acc = counts["val"][0] / counts["val"][1] if counts["val"][1] else 0.0
            counts["val"] = [0, 0]
            val_loss = fit_history["val_loss"][-1] if fit_history["val_loss"] else 0.0
            key = (val_acc, -(val_loss if np.isfinite(val_loss) else 0.0))
            if key > best["key"]:
                best["key"], best["state"] = key, model.state_dict()
            return {"train_acc": train_acc, "val_acc": val_acc,
                    "elapsed": fmt_seconds(time.perf_counter() - start)}

        fit_history = fit(model, train_batches, loss_fn, opt, args.epochs,
                          val_batches if len(val_seqs) else None, scheduler=sched,
                          clip_grad_norm=args.clip, patience=args.patience, unit="texts",
                          progress=not args.no_progress, on_epoch_end=epoch_end,
                          log=lambda line: print(line, flush=True))
        if best["state"] is not None:
            model.load_state_dict(best["state"])
        return (model, fit_history, max(best["key"][0], 0.0),
                predict_proba(model, test_seqs, gram[2]))

    members = [train_member(k) for k in range(args.ensemble)]
    model, fit_history, best_acc, _ = members[0]
    history = {k: fit_history[k] for k in ("train_loss", "val_loss", "lr", "train_acc",
                                           "val_acc")}
    test_proba = np.mean([m[3] for m in members], axis=0)
    if args.ensemble > 1:
        single = [float((m[3].argmax(axis=1) == splits.test.labels).mean()) for m in members]
        print(f"test accuracy of each network alone: {', '.join(f'{a:.4f}' for a in single)}")
    test_pred = test_proba.argmax(axis=1)
    test_acc = float((test_pred == splits.test.labels).mean()) if len(test_pred) else 0.0
    elapsed = time.perf_counter() - t0
    path = out_dir(args.out) / "model.npz"
    mg.save({"model": model.state_dict(), "vocab": vocab.to_dict(), "classes": list(classes),
             "ensemble": [m[0].state_dict() for m in members[1:]],
             "ngram_vocab": ngram_vocab.to_dict() if ngram_vocab else None,
             "config": {k: getattr(args, k) for k in ("cell", "embed", "hidden", "pooling",
                                                      "max_len", "unidirectional", "tokens",
                                                      "ngrams", "truncate")}}, path)
    curve = loss_plot(fit_history, out_dir(args.out) / "loss.png",
                      f"{name}: cross-entropy per epoch")
    if curve:
        print(f"loss curve: {curve}")
    what = f"the ensemble of {args.ensemble}" if args.ensemble > 1 else "the network"
    print(f"test accuracy {test_acc:.4f} ({what}) on {len(test_seqs)} examples (best "
          f"validation accuracy {best_acc:.4f}, {len(history['val_acc'])} epochs); total time "
          f"{fmt_seconds(elapsed)}; model saved to {path}")
    tb = time.perf_counter()
    baselines = tfidf_baselines(args.baseline, train, splits.test)
    for kind, acc in baselines.items():
        grams = "word 1-2-grams" if kind == "words" else "character 1-3-grams"
        print(f"baseline: TF-IDF ({grams}) + logistic regression, same training split: test "
              f"accuracy {acc:.4f}   (RNN {test_acc:.4f}, {test_acc - acc:+.4f})")
    if baselines:
        print(f"baseline time {fmt_seconds(time.perf_counter() - tb)}")
    return {"test_accuracy": test_acc, "val_accuracy": best_acc, "history": history,
            "seconds": elapsed, "classes": classes, "loss_plot": curve,
            "baselines": baselines, "preset": args.preset, "tokens": args.tokens,
            "vocab_size": len(vocab), "test_predictions": test_pred,
            "test_probabilities": test_proba, "model": model}


if __name__ == "__main__":
    main()
