"""The lecture's first RNN: learn to continue "hello".

Vocabulary [h, e, l, o], one-hot inputs "h e l l", targets "e l l o". A vanilla RNN cell
(nn.RNNCell, a few hidden units) is unrolled by hand over the four steps, a Linear layer turns
each hidden state into scores for the four characters, and cross-entropy summed over the steps
is minimised. Note the two "l" inputs: after the first the answer is "l", after the second it
is "o", so the network must use its hidden state, not just the current input.

    python examples/hello.py               # a few seconds
    python examples/hello.py --hidden 3 --steps 300 --lr 0.05
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HelpFormatter, seed_everything  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn as nn  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402

VOCAB = ["h", "e", "l", "o"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--word", default="hello",
                   help="training sequence; its characters are the vocabulary")
    p.add_argument("--hidden", type=int, default=4, help="hidden units of the RNN cell")
    p.add_argument("--steps", type=int, default=200, help="training steps")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate")
    p.add_argument("--print-every", type=int, default=20, help="print the loss this often")
    p.add_argument("--seed", type=int, default=0, help="random seed of the initial weights")
    return p.parse_args(argv)


class HelloRNN(nn.Module):
    """One RNN cell unrolled over the sequence, plus a Linear read-out at every step."""

    def __init__(self, vocab_size: int, hidden: int, rng: np.random.Generator):
        super().__init__()
        self.hidden = hidden
        self.cell = nn.RNNCell(vocab_size, hidden, rng=rng)
        self.out = nn.Linear(hidden, vocab_size, rng=rng)

    def forward(self, xs: mg.Tensor) -> mg.Tensor:
        """xs: (T, V) one-hot rows -> scores (T, V)."""
        h = mg.Tensor(np.zeros((1, self.hidden), dtype=np.float32))
        scores = []
        for t in range(xs.shape[0]):
            h = self.cell(xs[t:t + 1], h)             # h_t = tanh(W_ih x_t + W_hh h_{t-1} + b)
            scores.append(self.out(h))                 # y_t = W_hy h_t + b_y
        return mg.concat(scores, axis=0)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    rng = seed_everything(args.seed)
    word = args.word
    if len(word) < 2:
        raise SystemExit("--word needs at least two characters")
    vocab = VOCAB if word == "hello" else sorted(set(word))
    index = {c: i for i, c in enumerate(vocab)}
    ids = np.array([index[c] for c in word])
    xs = mg.Tensor(np.eye(len(vocab), dtype=np.float32)[ids[:-1]])   # "hell" one-hot
    targets = ids[1:]                                                  # "ello"
    print(f"vocabulary {vocab}; input {word[:-1]!r} -> target {word[1:]!r}; "
          f"RNN cell with {args.hidden} hidden units")

    model = HelloRNN(len(vocab), args.hidden, rng)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    losses: list[float] = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        scores = model(xs)
        loss = F.cross_entropy(scores, targets, reduction="sum")  # summed over the 4 steps
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step == 1 or step % args.print_every == 0 or step == args.steps:
            guess = "".join(vocab[i] for i in scores.data.argmax(axis=1))
            print(f"step {step:4d}  loss {losses[-1]:.4f}  prediction {guess!r}")

    with mg.no_grad():
        probs = F.softmax(model(xs), axis=-1).data
    prediction = "".join(vocab[i] for i in probs.argmax(axis=1))
    print(f"\ntrained in {time.perf_counter() - start:.1f}s; per-step probabilities:")
    print("step input  " + "  ".join(f"{c:>5}" for c in vocab) + "   predicted  target")
    for t in range(len(targets)):
        row = "  ".join(f"{p:5.3f}" for p in probs[t])
        print(f"{t:4d}   {word[t]!r}   {row}   {prediction[t]!r}        {word[t + 1]!r}")
    print(f"\nthe network predicts {prediction!r} (target {word[1:]!r})")
    return {"losses": losses, "prediction": prediction, "probs": probs, "vocab": vocab}


if __name__ == "__main__":
    main()
