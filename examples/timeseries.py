"""Many-to-one regression on a time series: sunspots (real data, read offline) by default.

Each input is a window of --window consecutive steps of every feature; the target is the value
of the --target column --horizon steps after the window. An RNN, LSTM or GRU reads the window,
its last hidden state goes through Linear(1), and mean-squared error is minimised with Adam.

The default series is the yearly sunspot numbers 1700-2008 that ship inside statsmodels
(``statsmodels/datasets/sunspots/sunspots.csv``, read directly: no download, no pandas);
``--series co2`` takes the weekly Mauna Loa CO2 record from the same package, and
``--series generated`` a seeded 5-feature series (the lecture's Keras example).

The split is in time order: train, then validation, then test (the end of the series), a
window belonging to the part its target lies in, so no window sees past its own target.
Features are standardised with statistics of the training part only. The model is compared
with the naive forecast "the next value equals the last one" by RMSE in the series' own units
on the test part. Training runs through ``minigrad.train.fit`` (progress bar, validation loss
each epoch); with matplotlib, prediction against truth and the loss curves go to --out.

    python examples/timeseries.py                        # sunspots, LSTM
    python examples/timeseries.py --series co2 --predict change --window 52 --lr 1e-3
    python examples/timeseries.py --series generated --window 7 --cell gru
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
from minigrad.data.datasets import SERIES_NAMES, load_series  # noqa: E402
from minigrad.train import fit  # noqa: E402

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GENERATED = ["load", "daily", "weekly", "weather", "price"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--series", choices=[*SERIES_NAMES, "generated"], default="sunspots",
                   help="built-in series: real data from statsmodels, or a generated one")
    p.add_argument("--csv", default=None, help="CSV with a header row and numeric columns, "
                   "in time order (overrides --series)")
    p.add_argument("--target", default=None,
                   help="column to predict (default: the first column; 'load' when generated)")
    p.add_argument("--features", default=None,
                   help="comma-separated input columns (default: every numeric column)")
    p.add_argument("--length", type=int, default=2000, help="steps of the generated series")
    p.add_argument("--window", type=int, default=12, help="time steps per input window")
    p.add_argument("--horizon", type=int, default=1, help="predict this many steps ahead")
    p.add_argument("--predict", choices=["level", "change"], default="level",
                   help="the model outputs the next value, or its change from the last value "
                   "seen, reading the window relative to its last values (for trending series "
                   "such as co2, whose test levels lie above all training levels)")
    p.add_argument("--val-fraction", type=float, default=0.15,
                   help="share of the series (before the test part) used for validation")
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


def load_data(args: argparse.Namespace) -> tuple[np.ndarray, list[str], str, list[str]]:
    """(data (n, F), column names, a description, time labels) of the chosen series."""
    if args.csv:
        feats = args.features.split(",") if args.features else None
        data, names = read_numeric_csv(args.csv, feats)
        return data, names, args.csv, [str(i) for i in range(len(data))]
    if args.series == "generated":
        data, names = generate_series(args.length, args.seed)
        return (data, names, f"generated series ({args.length} steps, seed {args.seed})",
                [str(i) for i in range(len(data))])
    try:
        series = load_series(args.series)
    except (ModuleNotFoundError, FileNotFoundError) as e:
        raise SystemExit(f"timeseries: {e}") from None
    return series.values[:, None], [series.column], series.description, series.times


def split_points(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """Time-order cut points: steps [0, a) train, [a, b) validation, [b, n) test."""
    if val_fraction < 0 or test_fraction <= 0 or val_fraction + test_fraction >= 0.9:
        raise SystemExit("timeseries: need --val-fraction >= 0, --test-fraction > 0 and "
                         "their sum below 0.9")
    b = n - max(1, int(round(n * test_fraction)))
    a = b - int(round(n * val_fraction))
    return a, b


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rng = seed_everything(args.seed)
    data, names, source, times = load_data(args)
    target_name = args.target or names[0]
    if target_name not in names:
        raise SystemExit(f"timeseries: --target {target_name!r} is not among the numeric "
                         f"input columns {names}")
    k = names.index(target_name)
    train_end, val_end = split_points(len(data), args.val_fraction, args.test_fraction)
    # scaling statistics from the training part only: nothing of the future leaks in
    mean, std = data[:train_end].mean(axis=0), data[:train_end].std(axis=0) + 1e-8
    scaled = ((data - mean) / std).astype(np.float32)
    X, y = make_windows(scaled, scaled[:, k], args.window, args.horizon)
    last = X[:, -1, k]                                 # the last value each window saw
    if args.predict == "change":   # inputs and target relative to the window's last values,
        y = y - last                # so the model sees shapes, not levels it never trained on
        X = X - X[:, -1:, :]
    # a window belongs to the part its target lies in
    target_step = np.arange(len(y)) + args.window - 1 + args.horizon
    parts = {"train": target_step < train_end,
             "val": (target_step >= train_end) & (target_step < val_end),
             "test": target_step >= val_end}
    Xtr, ytr = X[parts["train"]], y[parts["train"]]
    if len(ytr) < 2 or not parts["test"].any():
        raise SystemExit(f"timeseries: a series of {len(data)} steps leaves too few windows "
                         f"of {args.window} steps for training and testing")
    print(f"data: {source}; {len(data)} steps; features {names}; target {target_name!r}; "
          f"windows of {args.window} steps -> {args.predict} {args.horizon} step(s) later; "
          f"windows: train {len(ytr)}, validation {int(parts['val'].sum())}, test "
          f"{int(parts['test'].sum())} (in time order)")

    model = Regressor(len(names), args.cell, args.hidden, rng)
    opt = optim.Adam(model.parameters(), lr=args.lr)

    def epoch_batches(epoch: int) -> LazyBatches:
        # one permutation per epoch drawn from the script's generator, in epoch order
        return LazyBatches(list(batches(len(ytr), args.batch_size, rng)),
                           lambda idx: (Xtr[idx], ytr[idx]))

    def loss_fn(model: Regressor, batch: tuple[np.ndarray, np.ndarray]) -> mg.Tensor:
        x, target = batch
        return F.mse_loss(model(x), target)

    val_batches = None
    if parts["val"].any():
        Xva, yva = X[parts["val"]], y[parts["val"]]
        val_batches = [(Xva[i:i + 256], yva[i:i + 256]) for i in range(0, len(yva), 256)]
    every = max(1, args.epochs // 6)
    shown = {1, args.epochs, *range(every, args.epochs + 1, every)}

    def report(epoch: int, history: dict) -> None:   # about seven lines, not one per epoch
        if epoch in shown:
            val = history["val_loss"][-1]
            vtext = "" if val is None else f"  validation {val:.4f}"
            print(f"epoch {epoch}/{args.epochs}  train {history['train_loss'][-1]:.4f}"
                  f"{vtext}  {history['items_per_s'][-1]:,.0f} windows/s", flush=True)

    print("loss: MSE of the standardised target")
    start = time.perf_counter()
    history = fit(model, epoch_batches, loss_fn, opt, args.epochs, val_batches, unit="windows",
                  progress=not args.no_progress, log=None, on_epoch_end=report)
    seconds = time.perf_counter() - start

    def forecast(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(model, truth, naive) in the target's own units for the windows in ``mask``."""
        model.eval()
        with mg.no_grad():
            out = model(X[mask]).data.astype(np.float64)
        base = last[mask].astype(np.float64)
        pred = out + base if args.predict == "change" else out
        truth = y[mask].astype(np.float64) + (base if args.predict == "change" else 0.0)
        return tuple(v * std[k] + mean[k] for v in (pred, truth, base))

    pred_u, true_u, naive_u = forecast(parts["test"])
    test_rmse, naive_rmse = rmse(pred_u, true_u), rmse(naive_u, true_u)
    val_rmse = rmse(*forecast(parts["val"])[:2]) if parts["val"].any() else None
    print(f"\ntrained in {seconds:.1f}s")
    if val_rmse is not None:
        print(f"validation RMSE: {val_rmse:.4f}")
    print(f"test RMSE: {args.cell.upper()} {test_rmse:.4f}  vs  naive last value "
          f"{naive_rmse:.4f}  ({'better' if test_rmse < naive_rmse else 'worse'}: ratio "
          f"{test_rmse / naive_rmse:.2f})")
    test_times = [times[i] for i in target_step[parts["test"]]]
    plot_path = curve_path = None
    plt = None if args.no_plot else pyplot()
    if plt is not None:
        plot_path = out_dir(args.out) / "timeseries.png"
        fig, ax = plt.subplots(figsize=(10, 4))
        steps = np.arange(len(true_u))
        ax.plot(steps, true_u, label="truth", color="black", linewidth=1.5)
        ax.plot(steps, pred_u, label=f"{args.cell.upper()} (RMSE {test_rmse:.3g})",
                linewidth=1.2)
        ax.plot(steps, naive_u, label=f"naive last value (RMSE {naive_rmse:.3g})",
                linewidth=1, linestyle="--", alpha=0.7)
        ticks = np.linspace(0, len(steps) - 1, min(8, len(steps))).astype(int)
        ax.set_xticks(ticks, [test_times[i] for i in ticks])
        ax.set_xlabel("test part (time)")
        ax.set_ylabel(target_name)
        ax.set_title(f"{target_name}: {args.horizon} step(s) ahead from {args.window}-step "
                     f"windows, test part")
        ax.legend()
        fig.tight_layout()
        fig.savefig(plot_path, dpi=120)
        plt.close(fig)
        print(f"plot: {plot_path}")
        curve_path = loss_plot(history, out_dir(args.out) / "loss.png",
                               f"{args.cell.upper()} on {target_name}: loss (MSE)")
        if curve_path:
            print(f"loss curve: {curve_path}")
    else:
        print("\n time        truth  prediction    naive")
        for i in range(min(10, len(true_u))):
            print(f"{test_times[i]:>10} {true_u[i]:10.4f} {pred_u[i]:11.4f} {naive_u[i]:8.4f}")
        if not args.no_plot:
            print("(install matplotlib for a plot: pip install matplotlib)")
    return {"test_rmse": test_rmse, "naive_rmse": naive_rmse, "val_rmse": val_rmse,
            "test_mse": test_rmse ** 2, "naive_mse": naive_rmse ** 2, "seconds": seconds,
            "plot": str(plot_path) if plot_path else None, "loss_plot": curve_path,
            "history": history, "prediction": pred_u, "truth": true_u, "times": test_times}


if __name__ == "__main__":
    main()
