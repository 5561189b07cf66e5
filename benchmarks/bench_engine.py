"""Step-at-a-time speed of the primitive graph: minigrad vs PyTorch eager, written the same way.

Workloads (float32, the same shapes and the same sequence of ops in both libraries):

- ``chain``: 100,000 scalar steps ``y = y * a + b`` (200,000 graph nodes), forward + backward.
- ``cell``: a layer-normalised LSTM cell written from primitives (matmuls, layer norm from
  mean / variance, sigmoid, tanh), batch 32, input = hidden = 64, 50 steps; forward + MSE on
  every hidden state + backward + Adam.
- ``attention``: a teacher-forced attention decoder training step: Embedding + ``nn.LSTM``
  encoder over 20 source steps, an ``LSTMCell`` decoder over 20 target steps with Luong dot
  attention written from primitives (scores = enc @ h, softmax, context = weights @ enc,
  tanh(W [h; context])), batch 32, hidden 128, vocabulary 40, cross-entropy, backward, Adam.

Both libraries run interleaved in one process with the same thread count (``--threads``,
default 1: ``torch.set_num_threads`` and ``minigrad.set_num_threads``); each figure is the
median of ``--reps`` repetitions, and the ratio printed is minigrad's speed relative to
PyTorch's (torch time / minigrad time: above 1 means minigrad is faster).

    python benchmarks/bench_engine.py                  # all three, 7 repetitions
    python benchmarks/bench_engine.py --work chain --reps 3
    python benchmarks/bench_engine.py --profile cell   # cProfile of minigrad's step
    python benchmarks/bench_engine.py --tree /tmp/old --cpu   # minigrad alone, CPU time

``--cpu`` times minigrad alone in process CPU time (min / median), for A/B runs of two trees
(``--tree``: the folder whose ``minigrad`` package is imported) on a loaded machine, where the
CPU time of one process moves less than its wall time.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

import numpy as np

_TREE = (sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv[:-1]
         else os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, _TREE)
import minigrad  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad import Tensor, nn, optim  # noqa: E402

CHAIN_STEPS = 100_000
B, IH, CELL_STEPS = 32, 64, 50
SRC, TGT, AH, VOCAB = 20, 20, 128, 40


def _update(opt, loss) -> float:
    """zero_grad, backward, step: the same calls in both libraries; the loss as a float."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


# ---- (a) the scalar chain -------------------------------------------------------------------
def mg_chain() -> Callable[[], float]:
    a = Tensor(np.float32(0.999), requires_grad=True)
    b = Tensor(np.float32(0.001), requires_grad=True)
    x = Tensor(np.float32(1.0), requires_grad=True)

    def step() -> float:
        y = x
        for _ in range(CHAIN_STEPS):
            y = y * a + b
        y.backward()
        a.grad = b.grad = x.grad = None
        return float(y.data)
    return step


def torch_chain(torch) -> Callable[[], float]:
    a = torch.tensor(0.999, requires_grad=True)
    b = torch.tensor(0.001, requires_grad=True)
    x = torch.tensor(1.0, requires_grad=True)

    def step() -> float:
        y = x
        for _ in range(CHAIN_STEPS):
            y = y * a + b
        y.backward()
        a.grad = b.grad = x.grad = None
        return float(y.detach())
    return step


# ---- (b) a layer-normalised LSTM cell from primitives ---------------------------------------
def _ln(x, g, b, eps: float = 1e-5):
    """Layer norm over the last axis from primitives (the same lines in both libraries)."""
    mu = x.mean(-1, keepdims=True)
    d = x - mu
    var = (d * d).mean(-1, keepdims=True)
    return d / (var + eps) ** 0.5 * g + b


def _cell_params(rng):
    k = 1 / np.sqrt(IH)
    return {"w_ih": rng.uniform(-k, k, (IH, 4 * IH)), "w_hh": rng.uniform(-k, k, (IH, 4 * IH)),
            "b": np.zeros(4 * IH), "g1": np.ones(4 * IH), "b1": np.zeros(4 * IH),
            "g2": np.ones(IH), "b2": np.zeros(IH)}


def _cell_data(rng):
    return (rng.standard_normal((CELL_STEPS, B, IH)), rng.standard_normal((CELL_STEPS, B, IH)))


def _cell_forward(p, xs, ys, zeros, split, mse):
    h = c = zeros
    loss = 0
    for t in range(len(xs)):
        gates = _ln(xs[t] @ p["w_ih"] + h @ p["w_hh"] + p["b"], p["g1"], p["b1"])
        i, f, g, o = split(gates)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * _ln(c, p["g2"], p["b2"]).tanh()
        loss = loss + mse(h, ys[t])
    return loss


def mg_cell() -> Callable[[], float]:
    rng = np.random.default_rng(0)
    p = {k: Tensor(v.astype(np.float32), requires_grad=True) for k, v in _cell_params(rng).items()}
    x, y = _cell_data(rng)
    xs = [Tensor(v.astype(np.float32)) for v in x]
    ys = [Tensor(v.astype(np.float32)) for v in y]
    zeros = Tensor(np.zeros((B, IH), np.float32))
    opt = optim.Adam(list(p.values()), lr=1e-3)

    def step() -> float:
        loss = _cell_forward(p, xs, ys, zeros, lambda g: minigrad.split(g, IH, axis=-1),
                             F.mse_loss)
        return _update(opt, loss)
    return step


def torch_cell(torch) -> Callable[[], float]:
    rng = np.random.default_rng(0)
    p = {k: torch.tensor(v, dtype=torch.float32, requires_grad=True)
         for k, v in _cell_params(rng).items()}
    x, y = _cell_data(rng)
    xs = [torch.tensor(v, dtype=torch.float32) for v in x]
    ys = [torch.tensor(v, dtype=torch.float32) for v in y]
    zeros = torch.zeros((B, IH))
    opt = torch.optim.Adam(list(p.values()), lr=1e-3, foreach=False)

    def step() -> float:
        loss = _cell_forward(p, xs, ys, zeros, lambda g: torch.split(g, IH, dim=-1),
                             torch.nn.functional.mse_loss)
        return _update(opt, loss)
    return step


# ---- (c) a teacher-forced attention decoder step --------------------------------------------
def _attention_data(rng):
    return (rng.integers(0, VOCAB, (SRC, B)), rng.integers(0, VOCAB, (TGT, B)),
            rng.integers(0, VOCAB, (TGT, B)))


def _decode(m, enc, h, c, tgt_in, cat, stack, softmax):
    """enc (B, S, H); the decoder's 20 steps with Luong dot attention; logits (T, B, V)."""
    logits = []
    emb = m["tgt_emb"](tgt_in)                       # (T, B, H)
    for t in range(tgt_in.shape[0]):
        h, c = m["cell"](emb[t], (h, c))
        scores = (enc @ h.reshape(B, AH, 1)).reshape(B, SRC)        # (B, S)
        weights = softmax(scores)
        context = (weights.reshape(B, 1, SRC) @ enc).reshape(B, AH)  # (B, H)
        combined = m["combine"](cat([h, context])).tanh()
        logits.append(m["out"](combined))
    return stack(logits)


def mg_attention() -> Callable[[], float]:
    minigrad.manual_seed(0)
    m = {"src_emb": nn.Embedding(VOCAB, AH), "enc": nn.LSTM(AH, AH),
         "tgt_emb": nn.Embedding(VOCAB, AH), "cell": nn.LSTMCell(AH, AH),
         "combine": nn.Linear(2 * AH, AH), "out": nn.Linear(AH, VOCAB)}
    params = [p for mod in m.values() for p in mod.parameters()]
    opt = optim.Adam(params, lr=1e-3)
    src, tgt_in, tgt_out = _attention_data(np.random.default_rng(1))

    def step() -> float:
        enc, (h_n, c_n) = m["enc"](m["src_emb"](src))
        enc = enc.transpose(1, 0, 2)                 # (B, S, H)
        logits = _decode(m, enc, h_n.reshape(B, AH), c_n.reshape(B, AH), tgt_in,
                         lambda xs: minigrad.concat(xs, axis=-1),
                         lambda xs: minigrad.stack(xs, axis=0), lambda s: s.softmax(-1))
        loss = F.cross_entropy(logits, tgt_out)
        return _update(opt, loss)
    return step


def torch_attention(torch) -> Callable[[], float]:
    tnn = torch.nn
    torch.manual_seed(0)
    m = {"src_emb": tnn.Embedding(VOCAB, AH), "enc": tnn.LSTM(AH, AH),
         "tgt_emb": tnn.Embedding(VOCAB, AH), "cell": tnn.LSTMCell(AH, AH),
         "combine": tnn.Linear(2 * AH, AH), "out": tnn.Linear(AH, VOCAB)}
    params = [p for mod in m.values() for p in mod.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, foreach=False)
    src, tgt_in, tgt_out = (torch.tensor(a) for a in _attention_data(np.random.default_rng(1)))

    def step() -> float:
        enc, (h_n, c_n) = m["enc"](m["src_emb"](src))
        enc = enc.transpose(0, 1)
        logits = _decode(m, enc, h_n.reshape(B, AH), c_n.reshape(B, AH), tgt_in,
                         lambda xs: torch.cat(xs, dim=-1), lambda xs: torch.stack(xs, dim=0),
                         lambda s: s.softmax(-1))
        loss = tnn.functional.cross_entropy(logits.reshape(-1, VOCAB), tgt_out.reshape(-1))
        return _update(opt, loss)
    return step


WORK = {"chain": (mg_chain, torch_chain), "cell": (mg_cell, torch_cell),
        "attention": (mg_attention, torch_attention)}


def _time(fn: Callable[[], float]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default="chain,cell,attention",
                   help="comma list of " + ", ".join(WORK))
    p.add_argument("--reps", type=int, default=7, help="interleaved repetitions (median)")
    p.add_argument("--threads", type=int, default=1, help="threads for both libraries")
    p.add_argument("--profile", default="", help="cProfile minigrad's step of one workload")
    p.add_argument("--tree", default=_TREE, help="the folder minigrad is imported from")
    p.add_argument("--cpu", action="store_true", help="minigrad alone, process CPU time")
    args = p.parse_args(argv)
    minigrad.set_num_threads(args.threads)
    if args.cpu:
        for name in args.work.split(","):
            step = WORK[name][0]()
            step()
            times = []
            for _ in range(args.reps):
                t0 = time.process_time()
                step()
                times.append(time.process_time() - t0)
            print(f"{args.tree}: {name} {min(times) * 1e3:.1f} ms min, "
                  f"{statistics.median(times) * 1e3:.1f} ms median (CPU)", flush=True)
        return
    if args.profile:
        import cProfile
        import pstats
        step = WORK[args.profile][0]()
        step()
        prof = cProfile.Profile()
        prof.runcall(step)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    import torch
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, reps {args.reps}, torch {torch.__version__}, "
          f"minigrad backend {minigrad.backend()}")
    print(f"{'work':<10} {'minigrad':>12} {'torch':>12} {'speed vs torch':>15}")
    for name in args.work.split(","):
        make_mg, make_torch = WORK[name]
        mg_step, torch_step = make_mg(), make_torch(torch)
        mg_step(), torch_step()                      # warm-up
        mg_times, torch_times = [], []
        for _ in range(args.reps):
            mg_times.append(_time(mg_step))
            torch_times.append(_time(torch_step))
        mg_med, torch_med = statistics.median(mg_times), statistics.median(torch_times)
        print(f"{name:<10} {mg_med * 1e3:>9.1f} ms {torch_med * 1e3:>9.1f} ms "
              f"{torch_med / mg_med:>15.2f}", flush=True)


if __name__ == "__main__":
    main()
