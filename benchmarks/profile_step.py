"""Where does one training step of bench_rnn.py spend its time? (cProfile, by function)

    python benchmarks/profile_step.py --cell lstm --hidden 64 [--primitive] [--steps 20]

The compiled kernels show up under their Python caller (minigrad/fast/fused.py forward and
backward), since Cython functions are not profiled themselves; use ``perf record`` for a
look inside them.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--primitive", action="store_true", help="profile the primitive graph path")
    p.add_argument("--top", type=int, default=20, help="rows to print")
    args = p.parse_args()
    sys.argv = sys.argv[:1]  # bench_rnn parses its own flags on import only when run as main
    import numpy as np

    import bench_rnn

    model = bench_rnn.MinigradLM(args.cell, args.hidden, fused=not args.primitive)
    batches = bench_rnn.make_batches(np.random.default_rng(0), 64, 32)
    bench_rnn.time_steps(model.step, batches, 3)  # warm up (buffers, caches)
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    bench_rnn.time_steps(model.step, batches, args.steps)
    profile.disable()
    per_step = (time.perf_counter() - t0) / args.steps
    print(f"{args.cell} H={args.hidden} {'primitive' if args.primitive else 'fused'}: "
          f"{per_step * 1e3:.2f} ms per step (under the profiler)")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
