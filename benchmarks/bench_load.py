"""The char-LM training step on a machine that is not idle: minigrad's default worker count
against one worker and against PyTorch, with and without a competing busy process.

One step is bench_rnn.py's (Embedding -> LSTM/GRU -> Linear -> cross_entropy -> backward ->
clip_grad_norm_ -> Adam, batch 32, 64 time steps, vocabulary 65, float32). Each repetition
runs every variant twice: once while a competing process spins on one core (a bounded
``while`` loop in a subprocess, started before and killed after that half of the
repetition), once without it. Variants, interleaved in this one process:

    mg N      minigrad with set_num_threads(N) (N = --threads, default: the cores; the default)
    mg 1      minigrad with set_num_threads(1)
    torch N   PyTorch with torch.set_num_threads(N)
    torch 1   PyTorch with torch.set_num_threads(1)

Figures: median ms per step over --reps repetitions, and the ratios the issue asks about
(default / one worker, and minigrad's speed / PyTorch's at the same thread count), loaded and
unloaded. The machine may be loaded by others as well: read the ratios.

    python benchmarks/bench_load.py                         # LSTM and GRU, H = 256
    python benchmarks/bench_load.py --cells lstm --reps 9 --busy 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import minigrad  # noqa: E402
from bench_rnn import MinigradLM, TorchLM, make_batches, time_steps  # noqa: E402

BUSY_LOOP = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="lstm,gru", help="comma list of lstm, gru, rnn")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions (median)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per variant and rep")
    p.add_argument("--threads", type=int, default=0, help="the default's threads (0: cores)")
    p.add_argument("--busy", type=int, default=1, help="competing busy processes")
    p.add_argument("--no-torch", action="store_true")
    return p.parse_args(argv)


class Busy:
    """``count`` competing processes, each a bounded busy loop, killed on exit."""

    def __init__(self, count: int, seconds: float = 600.0):
        self.count, self.seconds, self.procs = count, seconds, []

    def __enter__(self) -> "Busy":
        code = BUSY_LOOP.format(seconds=self.seconds)
        self.procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(self.count)]
        time.sleep(0.05)  # let them start spinning
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def variants(cell: str, hidden: int, threads: int, torch_too: bool) -> dict:
    """name -> (step function, setup run right before its timing)."""
    out = {}
    mg = MinigradLM(cell, hidden, fused=True)
    out[f"mg {threads}"] = (mg.step, lambda: minigrad.set_num_threads(threads))
    out["mg 1"] = (mg.step, lambda: minigrad.set_num_threads(1))
    if torch_too:
        import torch
        tm = TorchLM(cell, hidden)
        out[f"torch {threads}"] = (tm.step, lambda: torch.set_num_threads(threads))
        out["torch 1"] = (tm.step, lambda: torch.set_num_threads(1))
    return out


def run_cell(cell: str, args) -> dict:
    """{(variant, loaded): median seconds per step}."""
    threads = args.threads or minigrad.fast.threads.usable_cores()
    batches = make_batches(np.random.default_rng(0), 64, 32)
    table = variants(cell, args.hidden, threads, not args.no_torch)
    for step, setup in table.values():  # warm up
        setup()
        time_steps(step, batches, 2)
    times: dict = {(name, loaded): [] for name in table for loaded in (False, True)}
    for _ in range(args.reps):
        for loaded in (True, False):
            with Busy(args.busy if loaded else 0):
                for name, (step, setup) in table.items():
                    setup()
                    times[name, loaded].append(time_steps(step, batches, args.steps))
    return {key: statistics.median(v) for key, v in times.items()}


def report(cell: str, med: dict, args) -> None:
    threads = args.threads or minigrad.fast.threads.usable_cores()
    names = sorted({name for name, _ in med}, key=lambda n: (n.startswith("torch"), n))
    for loaded in (False, True):
        label = f"{args.busy} busy" if loaded else "no busy"
        cells = "  ".join(f"{n} {med[n, loaded] * 1e3:7.1f}" for n in names)
        d, one = med[f"mg {threads}", loaded], med["mg 1", loaded]
        line = f"{cell:4} {label:7} ms/step: {cells} | mg {threads}/mg 1 time {d / one:4.2f}"
        if not args.no_torch:
            for n in (threads, 1):
                line += f"  mg/torch speed ({n}) {med[f'torch {n}', loaded] / med[f'mg {n}', loaded]:4.2f}"
        print(line, flush=True)


def main(args: argparse.Namespace) -> None:
    minigrad.set_blas_threads(1)
    tver = "no torch"
    if not args.no_torch:
        import torch
        tver = f"torch {torch.__version__}"
    print(f"# minigrad {minigrad.__version__} backend={minigrad.backend()}, {tver}, "
          f"H={args.hidden}, batch 32, seq 64, median of {args.reps} x {args.steps} steps, "
          f"load average {os.getloadavg()[0]:.1f}, GOMP_SPINCOUNT="
          f"{os.environ.get('GOMP_SPINCOUNT')} (minigrad set its short spin: "
          f"{minigrad._ext.SHORT_SPIN}), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    for cell in args.cells.split(","):
        report(cell, run_cell(cell, args), args)


if __name__ == "__main__":
    main(parse_args())
