"""A small training loop for the examples: ``fit``, ``evaluate`` and ``plot_history``.

``fit`` runs epochs of zero_grad / loss / backward / (clip) / step, shows a progress bar (tqdm
when installed, else a plain text line) with the loss and items/s, validates each epoch, keeps a
history (dict of lists), stops early after ``patience`` epochs without improvement, steps an lr
scheduler each epoch, and checkpoints each epoch with ``minigrad.io.save`` (model, optimizer,
scheduler, data position, RNG states, history), from which ``resume=`` continues exactly::

    def loss_fn(model, batch):
        x, y = batch
        return F.cross_entropy(model(x), y)

    history = fit(model, train_batches, loss_fn, optim.Adam(model.parameters()), epochs=10,
                  val_batches=val, clip_grad_norm=1.0, patience=3, checkpoint="runs/lm.npz")
    plot_history(history, "runs/loss.png")

Batches are a re-iterable (list, DataLoader-like object) or a callable ``batches(epoch)`` that
returns an iterable; with a callable, shuffling seeded by the epoch replays exactly on resume.
"""
from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, Iterable

import numpy as np

from minigrad import io
from minigrad.engine import no_grad
from minigrad import random
from minigrad.nn.module import Module
from minigrad.nn.utils import clip_grad_norm_

__all__ = ["fit", "evaluate", "plot_history"]

Batches = Iterable[Any] | Callable[[int], Iterable[Any]]


def _epoch_batches(batches: Batches, epoch: int) -> Iterable[Any]:
    return batches(epoch) if callable(batches) else batches


def _default_count(batch: Any) -> int:
    """Items in a batch: the number of targets (last element of a tuple), else its length."""
    target = batch[-1] if isinstance(batch, (tuple, list)) else batch
    data = getattr(target, "data", target)
    return int(np.size(data)) if hasattr(data, "shape") else len(target)


class _Progress:
    """tqdm when installed (and wanted), else a text line rewritten at most twice a second."""

    def __init__(self, enabled: bool, desc: str, total: int | None, unit: str) -> None:
        self.bar, self.enabled, self.desc, self.total, self.unit = None, enabled, desc, total, unit
        self.last = 0.0
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc=desc, unit="batch", leave=False,
                                dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, done: int, loss: float, rate: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({"loss": f"{loss:.4f}", f"{self.unit}/s": f"{rate:,.0f}"},
                                 refresh=False)
        elif self.enabled and time.perf_counter() - self.last > 0.5:
            self.last = time.perf_counter()
            of = f"/{self.total}" if self.total else ""
            sys.stderr.write(f"\r{self.desc}  batch {done}{of}  loss {loss:.4f}  "
                             f"{rate:,.0f} {self.unit}/s   ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.last:
            sys.stderr.write("\r" + " " * 79 + "\r")


def evaluate(model: Module, batches: Iterable[Any], loss_fn: Callable[[Module, Any], Any],
             count: Callable[[Any], int] = _default_count) -> float:
    """Mean loss over the batches (weighted by items), in eval mode and without a graph.
    The model's previous train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    try:
        with no_grad():
            for batch in batches:
                k = count(batch)
                total += float(loss_fn(model, batch).item()) * k
                n += k
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the validation batches are empty")
    return total / n


def _checkpoint_state(model, optimizer, scheduler, epoch, history, best, bad, rngs) -> dict:
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "position": {"epoch": epoch, "batch": 0},
            "rng": {"default": random.get_rng_state(),
                    **{k: g.bit_generator.state for k, g in rngs.items()}},
            "history": history, "best": best, "bad_epochs": bad}


def _best_path(path: str) -> str:
    root, ext = os.path.splitext(path)
    return f"{root}.best{ext or '.npz'}"


def fit(model: Module, train_batches: Batches, loss_fn: Callable[[Module, Any], Any],
        optimizer: Any, epochs: int, val_batches: Batches | None = None, *,
        scheduler: Any = None, clip_grad_norm: float | None = None,
        patience: int | None = None, checkpoint: str | os.PathLike | None = None,
        resume: bool | str | os.PathLike = False, rngs: dict | None = None,
        count: Callable[[Any], int] = _default_count, unit: str = "samples",
        progress: bool = True, log: Callable[[str], Any] | None = print,
        on_epoch_end: Callable[[int, dict], dict | None] | None = None,
        meta: dict | None = None) -> dict[str, list]:
    """Train ``model`` for up to ``epochs`` epochs (in total, counting resumed ones).

    ``loss_fn(model, batch)`` returns the scalar loss Tensor of one batch. ``clip_grad_norm``
    clips the joint gradient norm before each step; ``scheduler.step()`` runs after each epoch;
    ``patience`` stops after that many epochs without a better validation loss (training loss
    without validation). ``checkpoint`` is a file written every epoch (and ``<name>.best.npz``
    on improvement); ``resume=True`` continues from it if it exists (or give a path). ``rngs``
    names extra numpy Generators (e.g. a data shuffler) saved and restored with it; the default
    generator (dropout, init) always is. ``count(batch)`` gives the items behind ``unit``/s.
    ``on_epoch_end(epoch, history)`` runs after each epoch's validation (epoch counts from 1);
    a dict it returns (e.g. ``{"val_acc": 0.91}``) is appended to the history, key by key, and
    shown in the epoch's log line.

    Returns the history: lists "epoch", "train_loss", "val_loss", "lr", "items_per_s",
    "seconds" (and "grad_norm" with clipping: the mean norm before clipping)."""
    rngs = dict(rngs or {})
    history: dict[str, list] = {k: [] for k in ("epoch", "train_loss", "val_loss", "lr",
                                                "items_per_s", "seconds", "grad_norm")}
    start, best, bad = 0, math.inf, 0
    path = None if checkpoint is None else os.fspath(checkpoint)
    resume_path = path if resume is True else (os.fspath(resume) if resume else None)
    if resume_path and os.path.exists(resume_path):
        state = io.load(resume_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        random.set_rng_state(state["rng"]["default"])
        for name, gen in rngs.items():
            gen.bit_generator.state = state["rng"][name]
        history = {k: list(v) for k, v in state["history"].items()}
        start, best, bad = state["position"]["epoch"], state["best"], state["bad_epochs"]
        if log:
            log(f"resumed from {resume_path} after epoch {start}")
    elif resume and resume is not True:
        raise FileNotFoundError(f"fit: resume checkpoint {resume_path!r} does not exist")

    for epoch in range(start, epochs):
        if patience is not None and bad >= patience:
            break
        model.train()
        batches = _epoch_batches(train_batches, epoch)
        total = len(batches) if hasattr(batches, "__len__") else None
        bar = _Progress(progress, f"epoch {epoch + 1}/{epochs}", total, unit)
        t0, loss_sum, items, norms, done = time.perf_counter(), 0.0, 0, [], 0
        try:
            for batch in batches:
                optimizer.zero_grad()
                loss = loss_fn(model, batch)
                loss.backward()
                if clip_grad_norm is not None:
                    norms.append(clip_grad_norm_(model.parameters(), clip_grad_norm))
                optimizer.step()
                k = count(batch)
                value = float(loss.item())
                if not math.isfinite(value):
                    raise FloatingPointError(f"fit: the loss became {value} at epoch "
                                             f"{epoch + 1}, batch {done + 1}; lower the "
                                             "learning rate or clip gradients")
                loss_sum, items, done = loss_sum + value * k, items + k, done + 1
                bar.update(done, loss_sum / items, items / (time.perf_counter() - t0))
        finally:
            bar.close()
        if done == 0:
            raise ValueError(f"fit: epoch {epoch + 1} had no training batches")
        seconds = time.perf_counter() - t0
        val = None
        if val_batches is not None:
            val = evaluate(model, _epoch_batches(val_batches, epoch), loss_fn, count)
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        for key, value in (("epoch", epoch + 1), ("train_loss", loss_sum / items),
                           ("val_loss", val), ("lr", lr), ("items_per_s", items / seconds),
                           ("seconds", seconds),
                           ("grad_norm", float(np.mean(norms)) if norms else None)):
            history[key].append(value)
        extra = (on_epoch_end(epoch + 1, history) if on_epoch_end else None) or {}
        for key, value in extra.items():
            history.setdefault(key, [None] * epoch).append(value)
        monitored = history["train_loss"][-1] if val is None else val
        improved = monitored < best
        best, bad = (monitored, 0) if improved else (best, bad + 1)
        if log:
            vtext = "" if val is None else f"  val {val:.4f}"
            etext = "".join(f"  {k} {v:.4f}" if isinstance(v, float) else f"  {k} {v}"
                            for k, v in extra.items())
            log(f"epoch {epoch + 1}/{epochs}  train {history['train_loss'][-1]:.4f}{vtext}  "
                f"lr {lr:.3g}  {items / seconds:,.0f} {unit}/s  {seconds:.1f}s{etext}")
        if path is not None:
            state = _checkpoint_state(model, optimizer, scheduler, epoch + 1, history, best,
                                      bad, rngs)
            io.save(state, path, meta=meta)
            if improved:
                io.save(state, _best_path(path), meta=meta)
        if patience is not None and bad >= patience:
            if log:
                log(f"early stopping: no improvement for {patience} epochs "
                    f"(best {best:.4f})")
            break
    return history


def plot_history(history: dict[str, list], path: str | os.PathLike,
                 title: str | None = None) -> str | None:
    """Write the loss curves (train and, if any, validation) to a PNG; returns the path, or
    None with a message when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"plot_history: matplotlib is not installed (pip install matplotlib); "
              f"{os.fspath(path)} was not written", file=sys.stderr)
        return None
    epochs = history.get("epoch") or list(range(1, len(history["train_loss"]) + 1))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, history["train_loss"], marker="o", label="train")
    val = history.get("val_loss") or []
    if any(v is not None for v in val):
        ax.plot(epochs, [np.nan if v is None else v for v in val], marker="o",
                label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title or "loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.fspath(path), dpi=100)
    plt.close(fig)
    return os.fspath(path)
