"""Small helpers shared by the example scripts: seeding, output folders, progress bars,
and optional matplotlib. Nothing here is part of the minigrad library."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help that shows defaults, except the uninformative None and False."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action) or ""


def seed_everything(seed: int) -> np.random.Generator:
    """Seed minigrad's default generator (weights, dropout masks) and return a Generator for
    the script's own draws."""
    import minigrad
    minigrad.manual_seed(seed)
    return np.random.default_rng(seed)


def out_dir(path: str | Path) -> Path:
    """Create (if needed) and return the folder for a script's outputs."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


class Progress:
    """A tqdm progress bar when tqdm is installed (and ``enabled``), else periodic lines."""

    def __init__(self, total: int, desc: str = "", enabled: bool = True, initial: int = 0,
                 unit: str = "it"):
        self.total, self.desc, self.n = total, desc, initial
        self._bar: Any = None
        self._last = time.perf_counter()
        self._every = max(1, total // 20)
        if enabled:
            try:
                from tqdm.auto import tqdm
                self._bar = tqdm(total=total, desc=desc, initial=initial, unit=unit,
                                 dynamic_ncols=True, leave=True, file=sys.stderr)
            except ImportError:
                pass
        self.enabled = enabled

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.n += n
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix({k: _fmt(v) for k, v in postfix.items()}, refresh=False)
            self._bar.update(n)
        elif self.enabled and (self.n % self._every == 0 or self.n == self.total):
            extra = " ".join(f"{k}={_fmt(v)}" for k, v in postfix.items())
            print(f"{self.desc} {self.n}/{self.total} {extra}", flush=True)

    def write(self, text: str) -> None:
        """Print without breaking the bar."""
        if self._bar is not None:
            self._bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def pyplot() -> Any:
    """matplotlib.pyplot with a file-only backend, or None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None
            ) -> Iterable[np.ndarray]:
    """Index batches over ``range(n)``, shuffled when ``rng`` is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


class LazyBatches:
    """A sized, re-iterable view that builds each batch on demand: ``make(index)`` for every
    index array of ``index_batches``. Handy as what ``minigrad.train.fit`` iterates over:
    its length gives the progress bar a total, and no epoch is materialised in memory."""

    def __init__(self, index_batches: Sequence[np.ndarray], make: Callable[[np.ndarray], Any]):
        self.index_batches, self.make = index_batches, make

    def __len__(self) -> int:
        return len(self.index_batches)

    def __iter__(self):
        return (self.make(idx) for idx in self.index_batches)


def loss_plot(history: dict, path: str | Path, title: str) -> str | None:
    """The loss curves of a ``minigrad.train.fit`` history as a PNG, or None (silently) when
    matplotlib is not installed."""
    if pyplot() is None:
        return None
    from minigrad.train import plot_history
    return plot_history(history, path, title=title)


def fmt_seconds(s: float) -> str:
    m, s = divmod(int(round(s)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
