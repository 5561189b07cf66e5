"""Peak memory of training on the primitive graph (and on the fused path), each case in a fresh
process. Three figures per case, all counted from just before the measured loop (imports and
the model itself are not counted): the peak resident set size (``ru_maxrss`` minus the resident
size before), and from ``tracemalloc`` (which sees numpy's arrays) the peak of traced memory and
what is still traced at the end, with the last ``loss`` still referenced (the allocator keeps
freed pages mapped, so the resident size alone cannot show what was released).

Cases:

- ``loop``: a char-LM training loop on the primitive path (Embedding -> LSTM(fused=False) ->
  Linear, cross-entropy, backward, Adam; T=100, B=32, H=128, 4 steps) written as users write
  it: ``loss`` stays bound to the last step's loss while the next step's forward runs.
- ``lstm500``: one LSTM layer at T=500, B=32, I=H=256: forward + MSE + backward, primitive
  path (``fused=False``), with the loss still referenced after backward.
- ``lstm500_fused``: the same on the fused path.

``--baseline REV`` runs every case on an older commit as well (extracted with ``git archive``
into a temporary folder, compiled extensions copied from this tree), side by side:

    python benchmarks/bench_memory.py                       # this tree only
    python benchmarks/bench_memory.py --baseline 7627332    # before / after
    python benchmarks/bench_memory.py --cases loop --steps-kept
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The measured program, run as `python -c CHILD case` with the tree to test on sys.path.
CHILD = r'''
import json, resource, sys, tracemalloc
import numpy as np
import minigrad
from minigrad import Tensor, nn, optim
import minigrad.functional as F

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

case = sys.argv[1]
minigrad.set_num_threads(1)
minigrad.manual_seed(0)
rng = np.random.default_rng(0)
if case == "loop":
    T, B, H, V = 100, 32, 128, 65
    emb, lstm, head = nn.Embedding(V, H), nn.LSTM(H, H, fused=False), nn.Linear(H, V)
    params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
    opt = optim.Adam(params, lr=1e-3)
    tokens = rng.integers(0, V, (T + 1, B))
    before = rss_mb()
    tracemalloc.start()
    for step in range(4):
        out, _ = lstm(emb(tokens[:-1]))
        loss = F.cross_entropy(head(out), tokens[1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
else:
    T, B, H = 500, 32, 256
    lstm = nn.LSTM(H, H, fused=case.endswith("fused"))
    x = Tensor(rng.standard_normal((T, B, H)).astype(np.float32))
    target = Tensor(rng.standard_normal((T, B, H)).astype(np.float32))
    before = rss_mb()
    tracemalloc.start()
    out, _ = lstm(x)
    loss = F.mse_loss(out, target)
    del out
    loss.backward()
current, peak = tracemalloc.get_traced_memory()
print(json.dumps({"rss_peak": peak_mb() - before, "traced_peak": peak / 2**20,
                  "traced_after": current / 2**20}))
'''


def run_case(tree: str, case: str) -> dict:
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", CHILD, case], capture_output=True, text=True,
                         env=env, cwd=tree, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"case {case} on {tree} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_tree(rev: str, into: str) -> str:
    """The tree of commit ``rev`` in ``into``, with this tree's compiled extensions."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    for so in glob.glob(os.path.join(ROOT, "minigrad", "_ext", "*.so")):
        shutil.copy(so, os.path.join(into, "minigrad", "_ext"))
    return into


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="loop,lstm500,lstm500_fused")
    p.add_argument("--baseline", default="", help="a git revision to compare with")
    args = p.parse_args(argv)
    trees = [("this tree", ROOT)]
    tmp = None
    if args.baseline:
        tmp = tempfile.mkdtemp(prefix="minigrad_base_")
        trees.insert(0, (f"at {args.baseline}", baseline_tree(args.baseline, tmp)))
    try:
        print("MB from just before the loop: RSS peak, traced peak, traced at the end")
        print(f"{'case':<15}" + "".join(f"{name:>30}" for name, _ in trees))
        print(f"{'':<15}" + "".join(f"{'RSS peak':>10}{'traced':>10}{'at end':>10}"
                                    for _ in trees))
        for case in args.cases.split(","):
            row = f"{case:<15}"
            for _, tree in trees:
                r = run_case(tree, case)
                row += "".join(f"{r[k]:>10.0f}" for k in ("rss_peak", "traced_peak",
                                                           "traced_after"))
            print(row, flush=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
