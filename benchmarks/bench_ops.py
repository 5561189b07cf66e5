"""One op at a time: where the step-at-a-time gap to PyTorch lies (bench_engine.py's profile).

Each primitive of ``bench_engine.py``'s layer-normalised LSTM cell and attention step, forward
only with grad on, on the shapes it has there (batch 32, float32), minigrad and PyTorch eager
with the same thread count, repetitions interleaved in one process, median per call. Then
compiled kernels against their numpy twins (the kernel alone, no graph): sigmoid, the tanh and
sigmoid backward rules, and the Linear layer's products at the shapes of the attention step, of
one-token generation and of a char-LM output layer.

    python benchmarks/bench_ops.py                 # 1 thread, 7 repetitions
    python benchmarks/bench_ops.py --threads 2 --reps 9
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import minigrad  # noqa: E402
import minigrad.functional as F  # noqa: E402
from minigrad.fast import _reference, kernels  # noqa: E402


def _operands(rng) -> dict[str, np.ndarray]:
    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    return {"x": arr(32, 256), "y": arr(32, 256), "col": np.abs(arr(32, 1)) + 1,
            "row": arr(256), "s": arr(32, 64), "s2": arr(32, 64), "w": arr(64, 256),
            "h": arr(32, 128), "w_lin": arr(512, 128)}


# name -> (minigrad op, torch op), each taking the dict of operands
OPS = {
    "add (32,256)+(32,256)": (lambda a: a["x"] + a["y"], None),
    "add (32,256)+(256,)": (lambda a: a["x"] + a["row"], None),
    "sub (32,256)-(32,1)": (lambda a: a["x"] - a["col"], None),
    "div (32,256)/(32,1)": (lambda a: a["x"] / a["col"], None),
    "mul (32,64)*(32,64)": (lambda a: a["s"] * a["s2"], None),
    "mean(-1) (32,256)": (lambda a: a["x"].mean(-1, keepdims=True),
                          lambda a: a["x"].mean(-1, keepdim=True)),
    "sigmoid (32,64)": (lambda a: a["s"].sigmoid(), None),
    "tanh (32,64)": (lambda a: a["s"].tanh(), None),
    "split (32,256) in 4": (lambda a: minigrad.split(a["x"], 64, axis=-1),
                            lambda a: __import__("torch").split(a["x"], 64, dim=-1)),
    "matmul (32,64)@(64,256)": (lambda a: a["s"] @ a["w"], None),
    "linear (32,128)->512": (lambda a: F.linear(a["h"], a["w_lin"]),
                             lambda a: __import__("torch").nn.functional.linear(a["h"],
                                                                                a["w_lin"])),
}


def _per_call(fn, number: int) -> float:
    return timeit.timeit(fn, number=number) / number


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=7, help="interleaved repetitions (median)")
    p.add_argument("--threads", type=int, default=1, help="threads for both libraries")
    p.add_argument("--number", type=int, default=2000, help="calls per repetition")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    minigrad.set_num_threads(args.threads)
    kernels.apply_speed_settings()  # BLAS on one thread, as in a training step
    minigrad.set_blas_threads(args.threads)
    arrays = _operands(np.random.default_rng(0))
    mg_args = {k: minigrad.Tensor(v, requires_grad=True) for k, v in arrays.items()}
    t_args = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    print(f"# {args.threads} thread(s), torch {torch.__version__}, minigrad "
          f"{kernels.variant()}; forward with grad on, us per call, median of {args.reps}")
    print(f"{'op':26}{'minigrad':>10}{'torch':>10}{'torch/minigrad':>16}")
    for name, (mg_op, t_op) in OPS.items():
        t_op = t_op or mg_op
        times = {"mg": [], "torch": []}
        for _ in range(args.reps):
            times["mg"].append(_per_call(lambda: mg_op(mg_args), args.number))
            times["torch"].append(_per_call(lambda: t_op(t_args), args.number))
        m, t = (statistics.median(times[k]) * 1e6 for k in ("mg", "torch"))
        print(f"{name:26}{m:10.2f}{t:10.2f}{t / m:16.2f}")
    if kernels.COMPILED is None:
        return
    print(f"\n{'kernel alone':34}{'compiled':>10}{'twin':>10}{'twin/compiled':>15}")
    for name, (compiled, twin) in _kernel_pairs(np.random.default_rng(1)).items():
        times = {"compiled": [], "twin": []}
        for _ in range(args.reps):
            times["compiled"].append(_per_call(compiled, args.number // 4))
            times["twin"].append(_per_call(twin, args.number // 4))
        c, r = (statistics.median(times[k]) * 1e6 for k in ("compiled", "twin"))
        print(f"{name:34}{c:10.2f}{r:10.2f}{r / c:15.2f}")


def _kernel_pairs(rng) -> dict:
    """name -> (compiled kernel call, its numpy twin's call) on the same arrays."""
    ext = kernels.COMPILED

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    s, g, y = arr(32, 64), arr(32, 64), np.tanh(arr(32, 64))
    pairs = {
        "sigmoid (32,64)": (lambda: ext.elementwise.sigmoid(s), lambda: _reference.sigmoid(s)),
        "tanh_backward (32,64)": (lambda: ext.elementwise.tanh_backward(y, g),
                                  lambda: _reference.tanh_backward(y, g)),
        "sigmoid_backward (32,64)": (lambda: ext.elementwise.sigmoid_backward(y, g),
                                     lambda: _reference.sigmoid_backward(y, g)),
    }
    for rows, n_in, n_out in ((32, 128, 512), (32, 256, 128), (32, 128, 40), (1, 128, 512),
                              (2048, 256, 65)):
        x, w, b, go = arr(rows, n_in), arr(n_out, n_in), arr(n_out), arr(rows, n_out)
        shape = f"({rows},{n_in})->{n_out}"
        pairs[f"linear_forward {shape}"] = (
            lambda x=x, w=w, b=b: ext.linear.linear_forward(x, w, b),
            lambda x=x, w=w, b=b: _reference.linear_forward(x, w, b))
        pairs[f"linear_backward {shape}"] = (
            lambda x=x, w=w, go=go: ext.linear.linear_backward(go, x, w, (True, True, True)),
            lambda x=x, w=w, go=go: _reference.linear_backward(go, x, w, (True, True, True)))
    return pairs

if __name__ == "__main__":
    main()
