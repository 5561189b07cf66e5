"""Train a character-level language model (RNN, LSTM or GRU) with truncated BPTT, then sample.

The corpus is cut into --batch-size parallel streams; each step trains on the next --seq-len
characters of every stream, starting from the hidden state the previous chunk ended in
(detached, so gradients flow back at most --seq-len steps). Validation reports bits per
character (bpc) on the held-out tail of the text. Without --text the corpus is the English
help text that ships inside every Python (pydoc_data.topics), so nothing is downloaded.

    python examples/char_lm.py                                  # LSTM, ~2.5 min on 2 cores
    python examples/char_lm.py --cell gru --text mybook.txt --steps 5000
    python examples/char_lm.py --resume --steps 3000            # continue runs/char_lm
    python examples/char_lm.py --sample runs/char_lm/checkpoint.npz --prime "The " \\
        --temperature 0.7 --length 500
"""
from __future__ import annotations

import argparse
import hashlib
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HelpFormatter, Progress, fmt_seconds, out_dir, seed_everything  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn as nn  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.data import CharVocab, StreamBatcher, builtin_text, read_text, split_ids  # noqa: E402
from minigrad.decoding import sample_logits  # noqa: E402
from minigrad.nn.utils import clip_grad_norm_  # noqa: E402

CHECKPOINT = "checkpoint.npz"
CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent layer")
    m.add_argument("--hidden", type=int, default=256, help="hidden units per layer")
    m.add_argument("--layers", type=int, default=1, help="stacked recurrent layers")
    m.add_argument("--embed", type=int, default=64, help="character embedding size")
    m.add_argument("--dropout", type=float, default=0.0, help="dropout between layers")
    t = p.add_argument_group("training")
    t.add_argument("--text", default=None,
                   help="UTF-8 text file to train on (default: Python's built-in help text)")
    t.add_argument("--steps", type=int, default=1500, help="training steps (chunks)")
    t.add_argument("--epochs", type=float, default=None,
                   help="train for this many passes over the text instead of --steps")
    t.add_argument("--seq-len", type=int, default=64, help="BPTT length (characters)")
    t.add_argument("--batch-size", type=int, default=32, help="parallel streams")
    t.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (cosine decay)")
    t.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping")
    t.add_argument("--val-fraction", type=float, default=0.05,
                   help="tail of the text held out for validation")
    t.add_argument("--eval-every", type=int, default=300,
                   help="steps between validation + sample (0: only at the end)")
    t.add_argument("--save-every", type=int, default=300, help="steps between checkpoints")
    t.add_argument("--out", default="runs/char_lm", help="folder for checkpoints")
    t.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT",
                   help=f"continue from a checkpoint (default: OUT/{CHECKPOINT})")
    t.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop (and save) after N steps of this run; --resume continues")
    t.add_argument("--seed", type=int, default=0, help="random seed (weights, sampling)")
    t.add_argument("--no-progress", action="store_true", help="plain log lines, no bar")
    s = p.add_argument_group("sampling")
    s.add_argument("--sample", metavar="CKPT", default=None,
                   help="only generate text from this checkpoint, no training")
    s.add_argument("--temperature", type=float, default=0.8,
                   help="<1 safer, >1 wilder; 0 picks the most likely character")
    s.add_argument("--length", type=int, default=400, help="characters to generate")
    s.add_argument("--prime", default="The ", help="text the sample starts from")
    return p.parse_args(argv)


class CharModel(nn.Module):
    """Embedding -> RNN/LSTM/GRU -> Linear scores over the characters."""

    def __init__(self, vocab_size: int, cell: str, hidden: int, layers: int, embed: int,
                 dropout: float, rng: np.random.Generator):
        super().__init__()
        self.cell = cell
        self.rng = rng  # initial weights, then the dropout masks: its state goes in checkpoints
        self.embed = nn.Embedding(vocab_size, embed, rng=rng)
        self.rnn = CELLS[cell](embed, hidden, num_layers=layers, batch_first=True,
                               dropout=dropout, rng=rng)
        self.head = nn.Linear(hidden, vocab_size, rng=rng)

    def forward(self, ids: np.ndarray, state: Any = None) -> tuple[mg.Tensor, Any]:
        out, state = self.rnn(self.embed(ids), state)   # (B, T, H)
        return self.head(out), state                     # (B, T, V)


def detach(state: Any) -> Any:
    """Cut the graph behind the carried state (truncated BPTT)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def state_to_arrays(state: Any) -> dict:
    if state is None:
        return {}
    if isinstance(state, tuple):
        return {"h": state[0].data, "c": state[1].data}
    return {"h": state.data}


def arrays_to_state(saved: dict | None) -> Any:
    if not saved or "h" not in saved:
        return None
    h = mg.Tensor(np.asarray(saved["h"], dtype=np.float32))
    return (h, mg.Tensor(np.asarray(saved["c"], dtype=np.float32))) if "c" in saved else h


def load_corpus(path: str | None) -> tuple[str, str]:
    """The text and a short name for it."""
    if path is None:
        return builtin_text(), "Python's built-in help text (pydoc_data.topics)"
    try:
        return read_text(path), path
    except (FileNotFoundError, IsADirectoryError, ValueError) as e:
        raise SystemExit(f"char_lm: {e}") from None


def evaluate(model: CharModel, ids: np.ndarray, batch_size: int = 16,
             seq_len: int = 256) -> float:
    """Bits per character of ``ids`` (model carries its state across chunks)."""
    batch_size = max(1, min(batch_size, (len(ids) - 1) // 2))
    stream = StreamBatcher(ids, batch_size, seq_len)
    total, count, state = 0.0, 0, None
    model.eval()
    with mg.no_grad():
        for x, y in stream:
            logits, state = model(x, state)
            total += F.cross_entropy(logits, y, reduction="sum").item()
            count += y.size
    model.train()
    return total / count / math.log(2)


def sample(model: CharModel, vocab: CharVocab, length: int, temperature: float = 0.8,
           prime: str = "The ", rng: np.random.Generator | None = None) -> str:
    """``length`` new characters continuing ``prime`` (unknown prime characters skipped)."""
    rng = rng or np.random.default_rng()
    ids = vocab.encode(prime, errors="ignore")
    if len(ids) == 0:
        ids = np.array([rng.integers(len(vocab))])
    out = []
    model.eval()
    with mg.no_grad():
        logits, state = model(ids[None, :], None)
        for _ in range(length):
            # temperature <= 0: the argmax (minigrad.decoding.sample_logits)
            nxt = int(sample_logits(logits.data[:, -1], temperature, rng=rng)[0])
            out.append(nxt)
            logits, state = model(np.array([[nxt]]), state)
    model.train()
    return vocab.decode(out)


def build_model(config: dict, vocab_size: int, seed: int) -> CharModel:
    rng = seed_everything(seed)
    return CharModel(vocab_size, config["cell"], config["hidden"], config["layers"],
                     config["embed"], config["dropout"], rng)


def load_checkpoint(path: str | Path) -> tuple[dict, CharModel, CharVocab]:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"char_lm: checkpoint not found: {str(p)!r}")
    ckpt = mg.load(p)
    vocab = CharVocab.from_dict(ckpt["vocab"])
    model = build_model(ckpt["config"], len(vocab), int(ckpt["train"]["seed"]))
    model.load_state_dict(ckpt["model"])
    return ckpt, model, vocab


def run_sample(args: argparse.Namespace) -> dict:
    ckpt, model, vocab = load_checkpoint(args.sample)
    text = sample(model, vocab, args.length, args.temperature, args.prime,
                  np.random.default_rng(args.seed))
    cfg = ckpt["config"]
    print(f"# {cfg['cell'].upper()} {cfg['layers']}x{cfg['hidden']}, step "
          f"{ckpt['train']['step']}, temperature {args.temperature}", file=sys.stderr)
    print(args.prime + text)
    return {"sample": text}


def lr_at(step: int, total: int, base: float) -> float:
    """Cosine decay from ``base`` to ``base / 10`` over ``total`` steps."""
    frac = min(step / max(total, 1), 1.0)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.sample:
        return run_sample(args)
    out = out_dir(args.out)
    ckpt_path = out / CHECKPOINT
    resume = None
    if args.resume:
        resume_path = ckpt_path if args.resume == "auto" else Path(args.resume)
        resume = mg.load(resume_path) if resume_path.exists() else None
        if resume is None:
            raise SystemExit(f"char_lm: --resume: no checkpoint at {str(resume_path)!r}")
        args.text = resume["train"].get("text") or None

    text, name = load_corpus(args.text)
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
    vocab = CharVocab.from_dict(resume["vocab"]) if resume else CharVocab.from_text(text)
    if resume:
        if resume["train"]["digest"] != digest:
            raise SystemExit("char_lm: --resume: the text differs from the checkpoint's")
        config, seed = dict(resume["config"]), int(resume["train"]["seed"])
        for key in ("seq_len", "batch_size", "val_fraction", "lr"):
            setattr(args, key, type(getattr(args, key))(resume["train"][key]))
    else:
        config = {k: getattr(args, k) for k in ("cell", "hidden", "layers", "embed", "dropout")}
        seed = args.seed
    train_ids, val_ids = split_ids(vocab.encode(text), args.val_fraction)
    batcher = StreamBatcher(train_ids, args.batch_size, args.seq_len)
    total = (int(math.ceil(args.epochs * len(batcher))) if args.epochs is not None
             else args.steps)
    model = build_model(config, len(vocab), seed)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    state, step = None, 0
    history: dict[str, list] = {"step": [], "train_loss": [], "val_step": [], "val_bpc": []}
    if resume:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        batcher.load_state_dict(resume["train"]["batcher"])
        if "rng" in resume["train"]:  # the dropout masks go on where they stopped
            model.rng.bit_generator.state = resume["train"]["rng"]
        state, step = arrays_to_state(resume.get("hidden")), int(resume["train"]["step"])
        history = {k: list(v) for k, v in resume["history"].items()}
    n_params = sum(p.numel() for p in model.parameters())
    resuming = f"resuming at step {step}, " if resume else ""
    print(f"corpus: {name}: {len(text):,} characters, {len(vocab)} distinct; "
          f"train {len(train_ids):,} / validation {len(val_ids):,}")
    print(f"model: {config['cell'].upper()} {config['layers']}x{config['hidden']}, "
          f"{n_params:,} parameters; {args.batch_size} streams x {args.seq_len} steps, "
          f"{len(batcher)} chunks per epoch; {resuming}training to step {total} "
          f"(backend: {mg.backend()})")

    def save() -> None:
        mg.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "vocab": vocab.to_dict(), "config": config, "hidden": state_to_arrays(state),
                 "history": history,
                 "train": {"step": step, "seed": seed, "seq_len": args.seq_len,
                           "batch_size": args.batch_size, "val_fraction": args.val_fraction,
                           "lr": args.lr, "batcher": batcher.state_dict(),
                           "rng": model.rng.bit_generator.state,
                           "text": args.text or "", "digest": digest}}, ckpt_path)

    stop = {"flag": False}
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, lambda *a: stop.update(flag=True))
    sample_rng = np.random.default_rng(seed + 1)
    bar = Progress(total, desc="train", enabled=not args.no_progress, initial=step,
                   unit="step")
    start, smooth = time.perf_counter(), None
    end = total if args.stop_after is None else min(total, step + args.stop_after)
    try:
        while step < end and not stop["flag"]:
            if batcher.at_epoch_start:
                state = None            # a new pass over the text: start from zeros
            x, y = batcher.next_batch()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, args.lr)
            logits, state = model(x, state)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            state = detach(state)
            step += 1
            value = loss.item()
            smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
            history["step"].append(step)
            history["train_loss"].append(value)
            bar.update(1, loss=smooth, bpc=smooth / math.log(2))
            last = step == end
            if (args.eval_every and step % args.eval_every == 0) or last:
                bpc = evaluate(model, val_ids)
                history["val_step"].append(step)
                history["val_bpc"].append(bpc)
                bar.write(f"step {step}: train bpc {smooth / math.log(2):.3f}, validation "
                          f"bpc {bpc:.3f} ({fmt_seconds(time.perf_counter() - start)})")
                if not last:
                    bar.write("  sample: " + repr(args.prime + sample(
                        model, vocab, 160, args.temperature, args.prime, sample_rng)))
            if (args.save_every and step % args.save_every == 0) or last:
                save()
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    if stop["flag"] or step < total:
        save()
        print(f"stopped at step {step} of {total}; saved {ckpt_path}; continue with "
              f"--resume")
    elapsed = time.perf_counter() - start
    text_out = sample(model, vocab, args.length, args.temperature, args.prime, sample_rng)
    print(f"\ntrained {step} steps in {fmt_seconds(elapsed)}; checkpoint: {ckpt_path}")
    print(f"sample (temperature {args.temperature}):\n{args.prime}{text_out}\n")
    print(f"more samples: python examples/char_lm.py --sample {ckpt_path} --temperature 0.6")
    return {"history": history, "sample": text_out, "checkpoint": str(ckpt_path),
            "val_bpc": history["val_bpc"][-1] if history["val_bpc"] else None,
            "seconds": elapsed, "model": model}


if __name__ == "__main__":
    main()
