"""A/B: this checkout's minigrad against an older build of it, in one process.

The old build is a copy of an older commit with the package renamed (so both import side by
side), built in place::

    mkdir /tmp/mgold && git archive <commit> | tar -x -C /tmp/mgold && cd /tmp/mgold &&
    mv minigrad mgold && grep -rlw minigrad --include=*.py --include=*.pyx --include=*.pxd . |
    xargs sed -i 's/\\bminigrad\\b/mgold/g' && python setup.py -q build_ext --inplace -j 2
    python benchmarks/bench_ab.py --old /tmp/mgold --old-name mgold

The step is bench_rnn.py's (Embedding -> one recurrent layer -> Linear -> cross_entropy ->
backward -> clip_grad_norm_ -> Adam; batch 32, 64 steps, vocabulary 65, float32), fused path;
old and new run interleaved, median of ``--reps`` repetitions, new/old speed printed.
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time

import numpy as np

VOCAB = 65
CELL_CLASS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


class LM:
    """Embedding -> recurrent layer -> Linear, trained with Adam, built from package ``mg``."""

    def __init__(self, mg, cell: str, hidden: int):
        mg.manual_seed(0)
        self.mg = mg
        nn = importlib.import_module(mg.__name__ + ".nn")
        self.emb = nn.Embedding(VOCAB, hidden)
        self.rnn = getattr(nn, CELL_CLASS[cell])(hidden, hidden)
        self.head = nn.Linear(hidden, VOCAB)
        self.params = [*self.emb.parameters(), *self.rnn.parameters(), *self.head.parameters()]
        self.opt = importlib.import_module(mg.__name__ + ".optim").Adam(self.params, lr=1e-3)
        self.nn = nn

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        self.opt.zero_grad()
        out = self.rnn(self.emb(x))[0]
        loss = self.nn.functional.cross_entropy(self.head(out), y)
        loss.backward()
        self.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return loss.item()


def per_step(step, batches, n: int) -> float:
    t0 = time.perf_counter()
    for k in range(n):
        step(*batches[k % len(batches)])
    return (time.perf_counter() - t0) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", required=True, help="directory holding the renamed old package")
    p.add_argument("--old-name", default="mgold")
    p.add_argument("--cells", default="lstm,gru,rnn")
    p.add_argument("--hidden", default="64,128,256,512")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--seconds", type=float, default=0.4, help="time per repetition and side")
    args = p.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [root, args.old]
    new = importlib.import_module("minigrad")
    old = importlib.import_module(args.old_name)
    threads = args.threads or os.cpu_count() or 1
    for mg in (new, old):
        mg.set_num_threads(threads)
    rng = np.random.default_rng(0)
    text = rng.integers(0, VOCAB, size=(4, 65, 32), dtype=np.int64)
    batches = [(t[:-1].copy(), t[1:].copy()) for t in text]
    print(f"# new {new.__file__} vs old {old.__file__}; {threads} threads, batch 32, seq 64, "
          f"float32, fused, median of {args.reps}")
    print(f"{'cell':5} {'H':>4} {'new ms':>9} {'old ms':>9} {'new/old speed':>14}")
    for cell in args.cells.split(","):
        for hidden in (int(h) for h in args.hidden.split(",")):
            models = {"new": LM(new, cell, hidden), "old": LM(old, cell, hidden)}
            n = {k: max(2, int(args.seconds / per_step(m.step, batches, 2)))
                 for k, m in models.items()}
            times: dict[str, list[float]] = {"new": [], "old": []}
            for _ in range(args.reps):
                for k, m in models.items():
                    times[k].append(per_step(m.step, batches, n[k]))
            t_new, t_old = statistics.median(times["new"]), statistics.median(times["old"])
            print(f"{cell:5} {hidden:4d} {t_new * 1e3:9.2f} {t_old * 1e3:9.2f} "
                  f"{t_old / t_new:13.2f}x", flush=True)


if __name__ == "__main__":
    main()
