"""Generating text one character at a time: minigrad vs PyTorch eager, batch 1.

A 2-layer LSTM language model (Embedding -> LSTM(H, H, num_layers=2) -> Linear, vocabulary 65,
float32) generates greedily: each step feeds the last character (T = 1, batch 1) with the
carried (h, c) state through the model under no_grad and picks the most likely next
character. Both libraries hold the same weights (checked: both generate the same characters)
and use the same number of threads (``torch.set_num_threads(minigrad.get_num_threads())``).
Repetitions of ``--tokens`` steps are interleaved; medians per character and the ratio are
printed.

Also printed: the bytes of weights one step reads (every weight of both LSTM layers and the
head, one row of the embedding), the machine's memory bandwidth (a large numpy copy, read +
write), and so the time one step would take if it only streamed its weights from memory
(weights that fit in the caches can beat that).

    python benchmarks/bench_generation.py                 # hidden 128 and 512
    python benchmarks/bench_generation.py --hidden 512 --reps 15 --tokens 200
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import minigrad  # noqa: E402
import minigrad.nn as nn  # noqa: E402

VOCAB = 65


class MinigradLM:
    def __init__(self, hidden: int):
        minigrad.manual_seed(0)
        self.emb = nn.Embedding(VOCAB, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=2)
        self.head = nn.Linear(hidden, VOCAB)

    def generate(self, first: int, n: int) -> list[int]:
        out, token, state = [], first, None
        with minigrad.no_grad():
            for _ in range(n):
                x = self.emb(minigrad.tensor(np.array([[token]])))   # (T=1, B=1, H)
                y, state = self.lstm(x, state)
                token = int(self.head(y).data.argmax())
                out.append(token)
        return out

    def weight_bytes(self) -> int:
        lstm = sum(p.data.nbytes for p in self.lstm.parameters())
        head = sum(p.data.nbytes for p in self.head.parameters())
        return lstm + head + self.emb.weight.data[0].nbytes


class TorchLM:
    def __init__(self, ours: MinigradLM, torch):
        self.torch = torch
        hidden = ours.lstm.hidden_size
        self.emb = torch.nn.Embedding(VOCAB, hidden)
        self.lstm = torch.nn.LSTM(hidden, hidden, num_layers=2)
        self.head = torch.nn.Linear(hidden, VOCAB)
        with torch.no_grad():  # the same weights: PyTorch's names and layouts
            for module, source in ((self.emb, ours.emb), (self.lstm, ours.lstm),
                                   (self.head, ours.head)):
                theirs = dict(source.named_parameters())
                for name, p in module.named_parameters():
                    p.copy_(torch.from_numpy(theirs[name].data))

    def generate(self, first: int, n: int) -> list[int]:
        torch = self.torch
        out, token, state = [], first, None
        with torch.no_grad():
            for _ in range(n):
                x = self.emb(torch.tensor([[token]]))
                y, state = self.lstm(x, state)
                token = int(self.head(y).argmax())
                out.append(token)
        return out


def bandwidth(megabytes: int = 256, reps: int = 5) -> float:
    """Bytes per second of a large numpy copy (read + write)."""
    src = np.ones(megabytes << 18, np.float32)
    dst = np.empty_like(src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(reps))
    return 2 * src.nbytes / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="128,512")
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--tokens", type=int, default=100, help="characters per repetition")
    p.add_argument("--threads", type=int, default=0, help="default: minigrad's default")
    args = p.parse_args()
    import torch
    if args.threads:
        minigrad.set_num_threads(args.threads)
    threads = minigrad.get_num_threads()
    torch.set_num_threads(threads)
    bw = bandwidth()
    print(f"# minigrad {minigrad.backend()} ({minigrad.fast.kernels.variant()}), torch "
          f"{torch.__version__}, {threads} threads both; batch 1, 2-layer LSTM LM, vocab "
          f"{VOCAB}, float32, {args.tokens} characters a repetition, median of {args.reps}; "
          f"memory bandwidth (numpy copy) {bw / 1e9:.1f} GB/s")
    print(f"{'H':>4} {'minigrad us/char':>17} {'torch us/char':>14} {'minigrad speed/torch':>21}"
          f" {'weights/char':>13} {'stream-bound us':>16} {'minigrad/bound':>15} "
          f"{'torch/bound':>12}")
    for hidden in (int(h) for h in args.hidden.split(",")):
        ours = MinigradLM(hidden)
        theirs = TorchLM(ours, torch)
        same = ours.generate(1, 20) == theirs.generate(1, 20)
        times: dict[str, list[float]] = {"minigrad": [], "torch": []}
        for _ in range(args.reps):
            times["minigrad"].append(_timed(lambda: ours.generate(1, args.tokens)))
            times["torch"].append(_timed(lambda: theirs.generate(1, args.tokens)))
        t_ours = statistics.median(times["minigrad"]) / args.tokens
        t_torch = statistics.median(times["torch"]) / args.tokens
        nbytes = ours.weight_bytes()
        bound = nbytes / bw
        print(f"{hidden:4d} {t_ours * 1e6:17.1f} {t_torch * 1e6:14.1f} "
              f"{t_torch / t_ours:20.2f}x {nbytes / 1e6:10.2f} MB {bound * 1e6:16.1f} "
              f"{t_ours / bound:14.2f}x {t_torch / bound:11.2f}x"
              + ("" if same else "   (the two generated different characters!)"),
              flush=True)


if __name__ == "__main__":
    main()
