"""Where does the non-recurrent part of a bench_rnn.py training step spend its time?

    python benchmarks/bench_step_parts.py [--cell gru] [--hidden 64] [--steps 60] [--top-pad MB]

Two tables for the char-LM step (Embedding -> fused recurrent layer -> Linear head ->
cross_entropy -> backward -> clip_grad_norm_ -> Adam; batch 32, 64 steps, float32):

1. inside the step: each piece's median time per step and its minor page faults (first
   touches of fresh memory; each costs microseconds, more in a VM), measured by wrapping the
   ops' forward / backward while the real step runs. Cache misses and page faults make these
   larger than the same work measured alone.
2. alone: each piece repeated on warm inputs of the same shapes (the pure compute cost).

``--top-pad MB`` asks glibc (mallopt) to keep that much freed memory at the top of the heap
instead of returning it to the system after every step, and to serve arrays up to 32 MB from
the heap rather than from fresh mmaps; that removes the page faults. Compare a run with and
without it.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3  # glibc's mallopt parameter numbers


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Recorder:
    """Wraps callables so that each call adds (seconds, page faults) under a label."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[float, int]]] = {}

    def wrap(self, label: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            f0, t0 = _faults(), time.perf_counter()
            out = fn(*args, **kwargs)
            self.calls.setdefault(label, []).append((time.perf_counter() - t0, _faults() - f0))
            return out
        return timed

    def wrap_function(self, cls: type, label: str) -> None:
        for method in ("forward", "backward"):
            fn = getattr(cls, method)
            setattr(cls, method, staticmethod(self.wrap(f"{label}.{method}", fn)))


def inside_step(args, np, bench_rnn) -> None:
    import minigrad.nn.utils as nn_utils
    from minigrad.fast import fused, linalg, loss, nn_ops

    rec = Recorder()
    for cls, label in ((nn_ops.Embedding, "embedding"),
                       (linalg.Linear, "linear"),
                       (loss.CrossEntropy, "cross_entropy"),
                       (getattr(fused, f"{args.cell.upper()}Sequence"), f"{args.cell} layer")):
        rec.wrap_function(cls, label)
    nn_utils.clip_grad_norm_ = rec.wrap("clip_grad_norm_", nn_utils.clip_grad_norm_)
    model = bench_rnn.MinigradLM(args.cell, args.hidden, fused=True)
    model.opt.step = rec.wrap("adam.step", model.opt.step)
    step = rec.wrap("whole step", model.step)
    batches = bench_rnn.make_batches(np.random.default_rng(0), 64, 32)
    for k in range(5):
        step(*batches[k % len(batches)])
    rec.calls.clear()
    for k in range(args.steps):
        step(*batches[k % len(batches)])
    print(f"1. inside the step ({args.cell}, H={args.hidden}; median of {args.steps} steps)")
    print(f"   {'piece':28s} {'ms':>8s} {'faults':>8s}")
    rows = {label: (np.median([c[0] for c in calls]) * 1e3, np.mean([c[1] for c in calls]))
            for label, calls in rec.calls.items()}
    for label, (ms, faults) in rows.items():
        print(f"   {label:28s} {ms:8.3f} {faults:8.1f}")
    recurrent = sum(ms for label, (ms, _) in rows.items() if "layer" in label)
    print(f"   {'outside the recurrent layer':28s} {rows['whole step'][0] - recurrent:8.3f}")


def alone(args, np) -> None:
    import minigrad as mg
    import minigrad.nn as nn
    from minigrad.function import Context
    from minigrad.ops import linalg, loss, nn_ops

    rng = np.random.default_rng(0)
    T, B, H, V = 64, 32, args.hidden, 65
    tokens = rng.integers(0, V, (T, B))
    emb_w = rng.standard_normal((V, H)).astype(np.float32)
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    w = rng.standard_normal((V, H)).astype(np.float32)
    b = rng.standard_normal(V).astype(np.float32)
    logits = rng.standard_normal((T, B, V)).astype(np.float32)
    g_logits = rng.standard_normal((T, B, V)).astype(np.float32)
    g_emb = rng.standard_normal((T, B, H)).astype(np.float32)

    def run(fn, *arrays, needs=(True,) * 3):
        ctx = Context(fn, (None,) * len(arrays), needs[:len(arrays)])
        return ctx, fn.forward(ctx, *arrays)

    def emb_backward():
        ctx, _ = run(nn_ops.Embedding, tokens, emb_w, needs=(False, True))
        nn_ops.Embedding.backward(ctx, g_emb)

    def linear_backward():
        ctx, _ = run(linalg.Linear, x, w, b)
        linalg.Linear.backward(ctx, g_logits)

    def ce_backward():
        ctx, _ = run(loss.CrossEntropy, logits, tokens, needs=(True, False))
        loss.CrossEntropy.backward(ctx, np.ones((), np.float32))

    params = [mg.Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
              for s in ((V, H), (3 * H, H), (3 * H, H), (3 * H,), (3 * H,), (V, H), (V,))]
    for p in params:
        p.grad = rng.standard_normal(p.shape).astype(np.float32) * 1e-3
    opt = mg.optim.Adam(params, lr=1e-3)
    pieces = {
        "embedding.forward": lambda: run(nn_ops.Embedding, tokens, emb_w),
        "embedding fwd+bwd": emb_backward,
        "linear.forward": lambda: run(linalg.Linear, x, w, b),
        "linear fwd+bwd": linear_backward,
        "cross_entropy.forward": lambda: run(loss.CrossEntropy, logits, tokens),
        "cross_entropy fwd+bwd": ce_backward,
        "clip_grad_norm_": lambda: nn.utils.clip_grad_norm_(params, 1e9),
        "adam.step": opt.step,
    }
    print(f"2. alone, warm inputs (median of {args.reps} calls)")
    for label, fn in pieces.items():
        times = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        print(f"   {label:28s} {np.median(times) * 1e3:8.3f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default="gru", choices=["lstm", "gru", "rnn"])
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--reps", type=int, default=300)
    p.add_argument("--top-pad", type=float, default=None, metavar="MB",
                   help="glibc only: mallopt M_TOP_PAD = MB and M_MMAP_THRESHOLD = 32 MB")
    args = p.parse_args()
    if args.top_pad is not None:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 32 * 2 ** 20)
        libc.mallopt(M_TOP_PAD, int(args.top_pad * 2 ** 20))
    sys.argv = sys.argv[:1]  # bench_rnn parses its own flags only when run as main
    import numpy as np

    import bench_rnn

    inside_step(args, np, bench_rnn)
    alone(args, np)


if __name__ == "__main__":
    main()
