"""Many-to-one regression on a multi-feature time series (the lecture's Keras example).

Each input is a window of --window consecutive steps (7) of every feature (5 for the built-in
series); the target is the value of the --target column --horizon steps after the window.
An RNN, LSTM or GRU reads the window, its last hidden state goes through Linear(1), and
mean-squared error is minimised with Adam. The split is chronological (the test set is the
end of the series) and features are standardised with training statistics. The model is
compared with the naive forecast "the next value equals the last one". Training runs
through ``minigrad.train.fit`` (a progress bar and one line per epoch); with matplotlib, the
loss curve goes to --out as well.

    python examples/timeseries.py                        # generated, seeded series
    python examples/timeseries.py --cell gru --hidden 64 --epochs 50
    python examples/timeseries.py --csv weather.csv --target temperature
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (HelpFormatter, LazyBatches, batches, loss_plot, out_dir,  # noqa: E402
                     pyplot, seed_everything)
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn as nn  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.train import fit  # noqa: E402

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GENERATED = ["load", "daily", "weekly", "weather", "price"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--csv", default=None, help="CSV with a header row and numeric columns "
                   "(default: a generated 5-feature series)")
    p.add_argument("--target", default=None,
                   help="column to predict (default: the first column; 'load' when generated)")
    p.add_argument("--features", default=None,
                   help="comma-separated input columns (default: every numeric column)")
    p.add_argument("--length", type=int, default=2000, help="steps of the generated series")
    p.add_argument("--window", type=int, default=7, help="time steps per input window")
    p.add_argument("--horizon", type=int, default=1, help="predict this many steps ahead")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="share of the series (its end) used for the test")
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent layer")
    p.add_argument("--hidden", type=int, default=32, help="hidden units")
    p.add_argument("--epochs", type=int, default=30, help="passes over the training windows")
    p.add_argument("--batch-size", type=int, default=32, help="windows per step")
    p.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    p.add_argument("--out", default="runs/timeseries", help="folder for the plots")
    p.add_argument("--no-plot", action="store_true", help="text summary only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--seed", type=int, default=0, help="seed of the series, weights, batches")
    return p.parse_args(argv)


def generate_series(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """A seeded (n, 5) series: an electricity-like 'load' driven by daily and weekly cycles,
    a persistent 'weather' anomaly and a slow 'price' random walk, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    daily = np.sin(2 * np.pi * t / 24)
    weekly = np.cos(2 * np.pi * t / (24 * 7 / 4))
    weather = np.zeros(n)
    for i in range(1, n):                          # AR(1): persistent anomalies
        weather[i] = 0.9 * weather[i - 1] + 0.3 * rng.standard_normal()
    price = np.cumsum(0.05 * rng.standard_normal(n))
    price -= np.linspace(price[0], price[-1], n)   # keep it bounded (a bridge)
    load = np.zeros(n)
    for i in range(3, n):                          # reacts to the drivers with lags
        load[i] = (0.6 * daily[i] + 0.3 * weekly[i] + 0.5 * weather[i - 1]
                   - 0.4 * price[i - 3] + 0.2 * load[i - 1] + 0.1 * rng.standard_normal())
    return np.stack([load, daily, weekly, weather, price], axis=1), list(GENERATED)


def read_numeric_csv(path: str, features: list[str] | None) -> tuple[np.ndarray, list[str]]:
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"timeseries: CSV file not found: {path!r}")
    with open(p, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if len(rows) < 3:
        raise SystemExit(f"timeseries: {path!r} needs a header row and data rows")
    header, body = rows[0], rows[1:]
    wanted = features or header
    missing = [c for c in wanted if c not in header]
    if missing:
        raise SystemExit(f"timeseries: {path!r} has no column(s) {missing}; columns: {header}")
    columns, names = [], []
    for name in wanted:
        j = header.index(name)
        try:
            columns.append([float(r[j]) for r in body])
            names.append(name)
        except (ValueError, IndexError):
            if features:   # asked for explicitly: must be numeric
                raise SystemExit(f"timeseries: column {name!r} of {path!r} is not numeric "
                                 "in every row") from None
    if not names:
        raise SystemExit(f"timeseries: {path!r} has no fully numeric column")
    return np.array(columns, dtype=np.float64).T, names


def make_windows(data: np.ndarray, target: np.ndarray, window: int, horizon: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """X (N, window, F) and y (N,) with y[i] = target[i + window - 1 + horizon]."""
    n = len(data) - window - horizon + 1
    if n < 1:
        raise SystemExit(f"timeseries: a series of {len(data)} steps is too short for "
                         f"window {window} and horizon {horizon}")
    idx = np.arange(n)[:, None] + np.arange(window)[None, :]
    return data[idx], target[np.arange(n) + window - 1 + horizon]


class Regressor(nn.Module):
    """RNN/LSTM/GRU over the window; the last hidden state -> Linear(1)."""

    def __init__(self, features: int, cell: str, hidden: int, rng: np.random.Generator):
        super().__init__()
        self.rnn = CELLS[cell](features, hidden, batch_first=True, rng=rng)
        self.head = nn.Linear(hidden, 1, rng=rng)

    def forward(self, x: np.ndarray) -> mg.Tensor:
        _, h_n = self.rnn(mg.Tensor(x))
        h = h_n[0] if isinstance(h_n, tuple) else h_n     # (layers, B, H) -> last layer
        return self.head(h[-1]).reshape(-1)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rng = seed_everything(args.seed)
    if args.csv:
        feats = args.features.split(",") if args.features else None
        data, names = read_numeric_csv(args.csv, feats)
        source = args.csv
    else:
        data, names = generate_series(args.length, args.seed)
        source = f"generated series ({args.length} steps, seed {args.seed})"
    target_name = args.target or names[0]
    if target_name not in names:
        raise SystemExit(f"timeseries: --target {target_name!r} is not among the numeric "
                         f"input columns {names}")
    k = names.index(target_name)
    n_test = max(1, int(round(len(data) * args.test_fraction)))
    cut = len(data) - n_test
    mean, std = data[:cut].mean(axis=0), data[:cut].std(axis=0) + 1e-8
    scaled = ((data - mean) / std).astype(np.float32)
    X, y = make_windows(scaled, scaled[:, k], args.window, args.horizon)
    # a window belongs to the test set when its target lies in the last n_test steps
    target_step = np.arange(len(y)) + args.window - 1 + args.horizon
    train, test = target_step < cut, target_step >= cut
    Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
    print(f"data: {source}; features {names}; target {target_name!r}; windows of "
          f"{args.window} steps -> value {args.horizon} step(s) later; train {len(ytr)}, "
          f"test {len(yte)}")

    model = Regressor(len(names), args.cell, args.hidden, rng)
    opt = optim.Adam(model.parameters(), lr=args.lr)

    def epoch_batches(epoch: int) -> LazyBatches:
        # one permutation per epoch drawn from the script's generator, in epoch order
        return LazyBatches(list(batches(len(ytr), args.batch_size, rng)),
                           lambda idx: (Xtr[idx], ytr[idx]))

    def loss_fn(model: Regressor, batch: tuple[np.ndarray, np.ndarray]) -> mg.Tensor:
        x, target = batch
        return F.mse_loss(model(x), target)

    every = max(1, args.epochs // 6)
    shown = {1, args.epochs, *range(every, args.epochs + 1, every)}

    def report(epoch: int, history: dict) -> None:   # about seven lines, not one per epoch
        if epoch in shown:
            print(f"epoch {epoch}/{args.epochs}  train {history['train_loss'][-1]:.4f}  "
                  f"{history['items_per_s'][-1]:,.0f} windows/s", flush=True)

    print("train loss: MSE of the standardised target")
    start = time.perf_counter()
    history = fit(model, epoch_batches, loss_fn, opt, args.epochs, unit="windows",
                  progress=not args.no_progress, log=None, on_epoch_end=report)
    model.eval()
    with mg.no_grad():
        pred = model(Xte).data.astype(np.float64)
    # back to the target's own units
    pred_u = pred * std[k] + mean[k]
    true_u = yte.astype(np.float64) * std[k] + mean[k]
    naive_u = Xte[:, -1, k].astype(np.float64) * std[k] + mean[k]   # last value seen
    mse = float(np.mean((pred_u - true_u) ** 2))
    naive = float(np.mean((naive_u - true_u) ** 2))
    print(f"\ntrained in {time.perf_counter() - start:.1f}s")
    print(f"test MSE: {args.cell.upper()} {mse:.4f}  vs  naive last value {naive:.4f}  "
          f"({'better' if mse < naive else 'worse'}: ratio {mse / naive:.2f})")
    plot_path = curve_path = None
    plt = None if args.no_plot else pyplot()
    if plt is not None:
        plot_path = out_dir(args.out) / "timeseries.png"
        shown = slice(0, min(len(true_u), 200))
        fig, ax = plt.subplots(figsize=(10, 4))
        ax.plot(true_u[shown], label="truth", color="black", linewidth=1.5)
        ax.plot(pred_u[shown], label=f"{args.cell.upper()} (MSE {mse:.3g})", linewidth=1.2)
        ax.plot(naive_u[shown], label=f"naive last value (MSE {naive:.3g})", linewidth=1,
                linestyle="--", alpha=0.7)
        ax.set_xlabel("test step")
        ax.set_ylabel(target_name)
        ax.set_title(f"{target_name}: prediction {args.horizon} step(s) ahead from "
                     f"{args.window}-step windows")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot_path, dpi=120)
        plt.close(fig)
        print(f"plot: {plot_path}")
        curve_path = loss_plot(history, out_dir(args.out) / "loss.png",
                               f"{args.cell.upper()} on {target_name}: training loss (MSE)")
        if curve_path:
            print(f"loss curve: {curve_path}")
    else:
        print("\n step      truth  prediction  naive")
        for i in range(min(10, len(true_u))):
            print(f"{i:5d} {true_u[i]:10.4f} {pred_u[i]:11.4f} {naive_u[i]:8.4f}")
        if not args.no_plot:
            print("(install matplotlib for a plot: pip install matplotlib)")
    return {"test_mse": mse, "naive_mse": naive, "plot": str(plot_path) if plot_path else None,
            "loss_plot": curve_path, "history": history, "prediction": pred_u,
            "truth": true_u}


if __name__ == "__main__":
    main()
