"""Char-level language-model training step: minigrad fused vs minigrad primitive vs PyTorch CPU.

One step = Embedding -> one recurrent layer -> Linear -> cross_entropy -> backward ->
clip_grad_norm_ -> Adam step (batch 32, 64 time steps, vocabulary 65, float32). The three
implementations run interleaved in one process; each figure is the median over ``--reps``
repetitions of ``--steps`` timed steps (after warm-up). Both libraries get the same number of
threads, ``--threads`` (default: all cores): ``torch.set_num_threads(n)`` and
``minigrad.set_num_threads(n)`` (the fused kernels' workers; minigrad's BLAS stays at its
default of one thread per worker, see minigrad/fast/threads.py).

    python benchmarks/bench_rnn.py                        # all cells, H = 64 128 256 512
    python benchmarks/bench_rnn.py --quick                # < 1 minute
    python benchmarks/bench_rnn.py --cells lstm --hidden 512 --reps 7 --paths fused,torch
    python benchmarks/bench_rnn.py --layer-only --threads 1   # the recurrent layer alone

Paths: ``fused`` is minigrad's default (fused kernels, with the embedding fold of
minigrad/fast/fold.py), ``unfolded`` the fused kernels with the fold turned off, ``primitive``
the graph of primitive ops, ``torch`` PyTorch's CPU modules.

Also printed at the largest hidden size: the GEMM throughput of the fused layer (its
forward + backward FLOPs over its time) next to numpy's own matmul at the same shapes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="lstm,gru,rnn", help="comma list of lstm, gru, rnn")
    p.add_argument("--hidden", default="64,128,256,512", help="comma list of hidden sizes")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions (median)")
    p.add_argument("--steps", type=int, default=0, help="timed steps per repetition "
                   "(default: scaled to about 0.5 s)")
    p.add_argument("--paths", default="fused,primitive,torch",
                   help="comma list of fused, unfolded, primitive, torch")
    p.add_argument("--threads", type=int, default=0,
                   help="threads for both libraries (default: the machine's cores)")
    p.add_argument("--blas-threads", type=int, default=0,
                   help="minigrad's BLAS threads, for experiments (default: 1)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--layer-only", action="store_true",
                   help="time only the recurrent layer (forward + backward), fused vs torch")
    p.add_argument("--quick", action="store_true",
                   help="H = 64 and 256 only, 3 reps, fewer steps, no primitive path at 256+")
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
THREADS = (ARGS.threads if ARGS and ARGS.threads else os.cpu_count()) or 1

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import minigrad  # noqa: E402
import minigrad.nn as nn  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.fast import fold as embedding_fold  # noqa: E402

VOCAB = 65
CELL_CLASS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


class MinigradLM:
    """Embedding -> recurrent layer -> Linear, trained with Adam; one call = one step."""

    def __init__(self, cell: str, hidden: int, fused: bool, seed: int = 0, fold: bool = True):
        minigrad.manual_seed(seed)
        self.fold = fold
        self.emb = nn.Embedding(VOCAB, hidden)
        self.rnn = getattr(nn, CELL_CLASS[cell])(hidden, hidden, fused=fused)
        self.head = nn.Linear(hidden, VOCAB)
        self.params = [*self.emb.parameters(), *self.rnn.parameters(), *self.head.parameters()]
        self.opt = optim.Adam(self.params, lr=1e-3)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.opt.zero_grad()
        previous = embedding_fold.set_enabled(self.fold)
        out = self.rnn(self.emb(x))[0]
        embedding_fold.set_enabled(previous)
        loss = nn.functional.cross_entropy(self.head(out), y)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return loss.item()


class TorchLM:
    def __init__(self, cell: str, hidden: int, seed: int = 0):
        import torch
        torch.manual_seed(seed)
        self.torch = torch
        self.emb = torch.nn.Embedding(VOCAB, hidden)
        self.rnn = getattr(torch.nn, CELL_CLASS[cell])(hidden, hidden)
        self.head = torch.nn.Linear(hidden, VOCAB)
        self.params = [*self.emb.parameters(), *self.rnn.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=1e-3)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        torch = self.torch
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        self.opt.zero_grad()
        out = self.rnn(self.emb(xt))[0]
        loss = torch.nn.functional.cross_entropy(self.head(out).reshape(-1, VOCAB),
                                                 yt.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return loss.item()


def time_steps(step: Callable, batches: list, n: int) -> float:
    """Seconds per step over n steps (cycling through the batches)."""
    t0 = time.perf_counter()
    for k in range(n):
        step(*batches[k % len(batches)])
    return (time.perf_counter() - t0) / n


def make_batches(rng: np.random.Generator, seq: int, batch: int, count: int = 4) -> list:
    text = rng.integers(0, VOCAB, size=(count, seq + 1, batch), dtype=np.int64)
    return [(t[:-1].copy(), t[1:].copy()) for t in text]


def bench_config(cell: str, hidden: int, paths: list[str], args) -> dict[str, float]:
    """Median seconds per training step for each path, interleaved repetitions."""
    batches = make_batches(np.random.default_rng(0), args.seq, args.batch)
    models = {}
    for path in paths:
        models[path] = (TorchLM(cell, hidden) if path == "torch"
                        else MinigradLM(cell, hidden, fused=(path != "primitive"),
                                        fold=(path != "unfolded")))
    n_steps = {}
    for path, model in models.items():  # warm up, then size each run to about 0.5 s
        per = time_steps(model.step, batches, 2)
        n_steps[path] = args.steps or max(2, min(100, int(0.5 / per)))
    times: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(args.reps):
        for path, model in models.items():
            times[path].append(time_steps(model.step, batches, n_steps[path]))
    return {p: statistics.median(v) for p, v in times.items()}


def gemm_flops(cell: str, hidden: int, seq: int, batch: int) -> float:
    """FLOPs of the fused layer's GEMMs in forward + backward (input size = hidden)."""
    gh, rows = GATES[cell] * hidden, seq * batch
    one = 2.0 * rows * hidden * gh   # one (T*B, H) x (H, G*H) product
    # forward: projection + recurrent; backward: recurrent dh, dX, dW_ih, dW_hh
    return 6 * one


def layer_fns(cell: str, hidden: int, args):
    """(fused layer fwd+bwd, torch layer fwd+bwd, GEMM FLOPs) on the same random data."""
    from minigrad import Tensor
    from minigrad.fast import fused
    rng = np.random.default_rng(0)
    T, B, H, G = args.seq, args.batch, hidden, GATES[cell]
    f32 = np.float32
    x = Tensor(rng.standard_normal((T, B, H)).astype(f32), requires_grad=True)
    h0, c0 = Tensor(np.zeros((B, H), f32)), Tensor(np.zeros((B, H), f32))
    w = [Tensor((rng.standard_normal(s) * 0.05).astype(f32), requires_grad=True)
         for s in ((G * H, H), (G * H, H), (G * H,), (G * H,))]
    grad = rng.standard_normal((T, B, H)).astype(f32)

    def ours():
        if cell == "lstm":
            out = fused.lstm_sequence(x, h0, c0, *w)[0]
        elif cell == "gru":
            out = fused.gru_sequence(x, h0, *w)[0]
        else:
            out = fused.rnn_sequence(x, h0, *w)[0]
        out.backward(grad)

    theirs = None
    if "torch" in args.paths.split(","):
        import torch
        layer = getattr(torch.nn, CELL_CLASS[cell])(H, H)
        xt = torch.from_numpy(x.data.copy()).requires_grad_()
        gt = torch.from_numpy(grad)

        def theirs():
            layer(xt)[0].backward(gt)
    return ours, theirs, gemm_flops(cell, H, T, B)


def layer_report(cell: str, hidden: int, args) -> None:
    """Median ms of the recurrent layer alone (forward + backward), fused vs torch."""
    ours, theirs, flops = layer_fns(cell, hidden, args)
    n = max(2, int(2e9 / flops))
    times: dict[str, list[float]] = {"fused": [], "torch": []}
    ours()  # warm up
    if theirs:
        theirs()
    for _ in range(args.reps):
        times["fused"].append(time_steps(ours, [()], n))
        if theirs:
            times["torch"].append(time_steps(theirs, [()], n))
    f = statistics.median(times["fused"])
    line = f"{cell:5} {hidden:4d} fused {f * 1e3:8.2f} ms ({flops / f / 1e9:5.1f} GFLOP/s)"
    if theirs:
        t = statistics.median(times["torch"])
        line += f"   torch {t * 1e3:8.2f} ms   torch/fused time {t / f:5.2f}x"
    print(line, flush=True)


def matmul_report(cell: str, hidden: int, args) -> None:
    """GEMM throughput of the fused layer alone vs numpy's matmul at the same shapes."""
    ours, _, flops = layer_fns(cell, hidden, args)
    rng = np.random.default_rng(0)
    B, H, G, T = args.batch, hidden, GATES[cell], args.seq
    f32 = np.float32
    a, wt = rng.standard_normal((B, H)).astype(f32), rng.standard_normal((H, G * H)).astype(f32)
    big = rng.standard_normal((T * B, H)).astype(f32)
    reps = max(3, args.reps)
    t_layer = statistics.median(time_steps(ours, [()], 5) for _ in range(reps))
    # numpy's matmul with as many BLAS threads as the layer has workers (the same cores)
    with threadpool_limits(limits=minigrad.get_num_threads(), user_api="blas"):
        t_small = statistics.median(time_steps(lambda: a @ wt, [()], 200) for _ in range(reps))
        t_big = statistics.median(time_steps(lambda: big @ wt, [()], 20) for _ in range(reps))
    print(f"  GEMM throughput, {cell} H={H}, {minigrad.get_num_threads()} threads: fused layer "
          f"fwd+bwd {flops / t_layer / 1e9:.1f} GFLOP/s ({t_layer * 1e3:.1f} ms); numpy matmul "
          f"({B},{H})x({H},{G * H}) "
          f"{2 * B * H * G * H / t_small / 1e9:.1f} GFLOP/s, ({T * B},{H})x({H},{G * H}) "
          f"{2 * T * B * H * G * H / t_big / 1e9:.1f} GFLOP/s")


def main(args: argparse.Namespace) -> None:
    cells = args.cells.split(",")
    hidden = [int(h) for h in args.hidden.split(",")]
    paths = args.paths.split(",")
    if args.quick:
        hidden = [h for h in hidden if h in (64, 256)] or hidden[:1]
        args.reps = min(args.reps, 3)
    minigrad.set_num_threads(THREADS)
    if args.blas_threads:
        minigrad.set_blas_threads(args.blas_threads)
    if "torch" in paths:
        import torch
        torch.set_num_threads(THREADS)
        tver = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    else:
        tver = "no torch"
    print(f"# minigrad {minigrad.__version__} backend={minigrad.backend()}, numpy "
          f"{np.__version__}, {tver}, minigrad {minigrad.get_num_threads()} threads (BLAS "
          f"{sorted(set(minigrad.fast.threads.get_blas_threads().values()))}), "
          f"batch {args.batch}, seq {args.seq}, vocab {VOCAB}, float32, median of {args.reps}")
    if args.layer_only:
        for cell in cells:
            for h in hidden:
                layer_report(cell, h, args)
        return
    ratios = ["fused"] if {"fused", "torch"} <= set(paths) else []
    print(f"{'cell':5} {'H':>4} " + " ".join(f"{p + ' tok/s':>16}" for p in paths)
          + "".join(f"  {p + '/torch':>14}" for p in ratios))
    for cell in cells:
        for h in hidden:
            use = [p for p in paths if not (p == "primitive" and args.quick and h > 64)]
            sec = bench_config(cell, h, use, args)
            tok = {p: args.batch * args.seq / s for p, s in sec.items()}
            row = " ".join(f"{tok[p]:16.0f}" if p in tok else f"{'-':>16}" for p in paths)
            ratio = "".join(f"  {tok[p] / tok['torch']:13.2f}x" for p in ratios if p in tok)
            print(f"{cell:5} {h:4d} {row}{ratio}", flush=True)
    if "fused" in paths:
        for cell in cells:
            matmul_report(cell, max(hidden), args)


if __name__ == "__main__":
    main(ARGS)
