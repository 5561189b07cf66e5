"""From minigrad to PyTorch: train a char-LM here, continue it with DistributedDataParallel.

1. minigrad trains the character LM of examples/char_lm.py for --steps steps (truncated BPTT).
2. Its state_dict is saved as safetensors (``minigrad.save(model.state_dict(), "x.safetensors")``).
3. The same model is built from ``torch.nn`` (same attribute names: embed, rnn, head), loads the
   file with ``safetensors.torch.load_file`` + ``load_state_dict`` (no renaming), and both
   libraries' logits on one batch are compared.
4. Training continues in PyTorch with ``torch.nn.parallel.DistributedDataParallel`` on
   --world-size processes (``torch.multiprocessing.spawn``, gloo backend, 127.0.0.1 only):
   each process takes its share of the batch's streams, DDP averages the gradients, so all
   processes keep identical weights (checked at the end).
5. Process 0 saves the weights with ``safetensors.torch.save_file``; minigrad loads them back,
   reports validation bits per character and samples text.

Runs on CPUs. For GPUs change the two marked lines below (``DEVICE``, ``BACKEND``): each process
then drives ``cuda:<rank>`` with the nccl backend. Several machines need a launcher such as
``torchrun`` in place of ``spawn``, with MASTER_ADDR set to the first machine (not tested here).

    python examples/continue_in_pytorch.py                    # about a minute on 2 cores
    python examples/continue_in_pytorch.py --cell gru --steps 500 --torch-steps 300
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HelpFormatter, Progress, out_dir  # noqa: E402
from char_lm import CELLS, build_model, detach, evaluate, load_corpus, sample  # noqa: E402
import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.data import CharVocab, StreamBatcher, split_ids  # noqa: E402
from minigrad.nn.utils import clip_grad_norm_  # noqa: E402

DEVICE = "cpu"     # CUDA: "cuda" (process <rank> then uses GPU <rank>)
BACKEND = "gloo"   # CUDA: "nccl"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--cell", choices=sorted(CELLS), default="lstm", help="recurrent layer")
    p.add_argument("--hidden", type=int, default=128, help="hidden units per layer")
    p.add_argument("--layers", type=int, default=1, help="stacked recurrent layers")
    p.add_argument("--embed", type=int, default=32, help="character embedding size")
    p.add_argument("--text", default=None,
                   help="UTF-8 text file (default: Python's built-in help text)")
    p.add_argument("--steps", type=int, default=300, help="training steps in minigrad")
    p.add_argument("--torch-steps", type=int, default=200,
                   help="further training steps in PyTorch (DDP)")
    p.add_argument("--world-size", type=int, default=2, help="DDP processes")
    p.add_argument("--seq-len", type=int, default=64, help="BPTT length (characters)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="streams per step in total (split across the DDP processes)")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping")
    p.add_argument("--val-fraction", type=float, default=0.05, help="held-out tail")
    p.add_argument("--length", type=int, default=300, help="characters of the final sample")
    p.add_argument("--out", default="runs/continue_in_pytorch", help="folder for the files")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--no-progress", action="store_true", help="plain log lines, no bar")
    return p.parse_args(argv)


def torch_model(config: dict, vocab_size: int) -> Any:
    """The char-LM in ``torch.nn``: the same layers under the same names as ``CharModel``."""
    import torch

    class TorchCharModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            kind = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
            self.embed = torch.nn.Embedding(vocab_size, config["embed"])
            self.rnn = kind[config["cell"]](config["embed"], config["hidden"],
                                            num_layers=config["layers"], batch_first=True)
            self.head = torch.nn.Linear(config["hidden"], vocab_size)

        def forward(self, ids: Any, state: Any = None) -> tuple[Any, Any]:
            out, state = self.rnn(self.embed(ids), state)
            return self.head(out), state

    return TorchCharModel()


def train_minigrad(model: Any, batcher: StreamBatcher, args: argparse.Namespace) -> list:
    """Truncated-BPTT training with Adam and clipping, as in char_lm.py; returns the losses."""
    opt = optim.Adam(model.parameters(), lr=args.lr)
    state, losses = None, []
    with Progress(args.steps, desc="minigrad", enabled=not args.no_progress,
                  unit="step") as bar:
        for _ in range(args.steps):
            if batcher.at_epoch_start:
                state = None
            x, y = batcher.next_batch()
            logits, state = model(x, state)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            state = detach(state)
            losses.append(loss.item())
            bar.update(1, loss=losses[-1])
    return losses


def same_logits(model: Any, tmodel: Any, ids: np.ndarray) -> float:
    """Largest absolute difference between the two libraries' logits on ``ids``."""
    import torch
    model.eval()
    with mg.no_grad():
        ours = model(ids)[0].numpy()
    model.train()
    with torch.no_grad():
        theirs = tmodel(torch.from_numpy(ids))[0].numpy()
    return float(np.abs(ours - theirs).max())


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world: int, job: dict) -> None:
    """One DDP process: load the minigrad weights, train on its share of the streams."""
    import torch
    import torch.distributed as dist
    from safetensors.torch import load_file, save_file
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    torch.manual_seed(job["seed"])
    dist.init_process_group(BACKEND, rank=rank, world_size=world)
    try:
        device = torch.device(DEVICE, rank) if DEVICE == "cuda" else torch.device(DEVICE)
        model = torch_model(job["config"], job["vocab_size"]).to(device)
        model.load_state_dict(load_file(job["weights"]))
        ddp = DDP(model, device_ids=[rank] if DEVICE == "cuda" else None)
        opt = torch.optim.Adam(ddp.parameters(), lr=job["lr"])
        batcher = StreamBatcher(job["train_ids"], job["batch_size"], job["seq_len"])
        batcher.load_state_dict(job["batcher"])     # go on where minigrad stopped
        mine = slice(rank, None, world)             # this process's streams
        state, losses, start = None, [], time.perf_counter()
        for step in range(job["steps"]):
            if batcher.at_epoch_start:
                state = None
            x, y = batcher.next_batch()
            x = torch.from_numpy(x[mine]).to(device)
            y = torch.from_numpy(y[mine]).to(device)
            logits, state = ddp(x, state)
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()                          # DDP all-reduces (averages) gradients
            torch.nn.utils.clip_grad_norm_(ddp.parameters(), job["clip"])
            opt.step()
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) \
                else state.detach()
            losses.append(loss.item())
            if rank == 0 and not job["quiet"] and (step + 1) % max(1, job["steps"] // 5) == 0:
                print(f"  torch rank 0: step {step + 1}/{job['steps']}  loss {loss.item():.4f}",
                      flush=True)
        # every process must hold the same weights: compare with process 0's copy
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        reference = flat.clone()
        dist.broadcast(reference, src=0)
        gap = (flat - reference).abs().max()
        dist.all_reduce(gap, op=dist.ReduceOp.MAX)
        mean_loss = torch.tensor(losses[-1])
        dist.all_reduce(mean_loss)
        if rank == 0:
            save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                      job["out_weights"])
            with open(job["report"], "w") as f:
                json.dump({"losses": losses, "max_weight_gap": float(gap),
                           "last_loss_mean": float(mean_loss) / world,
                           "seconds": time.perf_counter() - start}, f)
        # The DDP wrapper holds the process group (its reducer's hooks sit on the parameters):
        # freed here, in the middle of the run, not while Python shuts down, when the
        # group's threads may already be gone. Then both processes leave together: a process
        # that tears gloo down while the other still uses the connection makes that one abort.
        del ddp, opt, model
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def continue_in_torch(job: dict, world: int) -> dict:
    """Spawn the DDP processes on localhost and return process 0's report."""
    import torch.multiprocessing as tmp
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(free_port())
    tmp.spawn(ddp_worker, args=(world, job), nprocs=world, join=True)
    with open(job["report"]) as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        import torch
        import safetensors.torch  # noqa: F401
    except ImportError:
        raise SystemExit("continue_in_pytorch: needs PyTorch (CPU build: pip install "
                         "torch==2.13.0) and safetensors") from None
    if args.batch_size % args.world_size:
        raise SystemExit(f"continue_in_pytorch: --batch-size {args.batch_size} must be a "
                         f"multiple of --world-size {args.world_size}")
    out = out_dir(args.out)
    text, name = load_corpus(args.text)
    vocab = CharVocab.from_text(text)
    train_ids, val_ids = split_ids(vocab.encode(text), args.val_fraction)
    config = {"cell": args.cell, "hidden": args.hidden, "layers": args.layers,
              "embed": args.embed, "dropout": 0.0}
    print(f"corpus: {name}: {len(text):,} characters, {len(vocab)} distinct")

    # 1. minigrad
    model = build_model(config, len(vocab), args.seed)
    batcher = StreamBatcher(train_ids, args.batch_size, args.seq_len)
    start = time.perf_counter()
    mg_losses = train_minigrad(model, batcher, args)
    bpc_minigrad = evaluate(model, val_ids)
    print(f"1. minigrad: {args.steps} steps in {time.perf_counter() - start:.1f}s, "
          f"validation {bpc_minigrad:.3f} bits/char")

    # 2. safetensors
    first = out / "minigrad.safetensors"
    mg.save(model.state_dict(), first, meta={"config": config, "vocab": vocab.to_dict()})
    print(f"2. saved {first}")

    # 3. the same model in PyTorch, same logits
    tmodel = torch_model(config, len(vocab))
    tmodel.load_state_dict(safetensors.torch.load_file(str(first)))
    ids = np.random.default_rng(args.seed).integers(0, len(vocab), size=(4, 32))
    gap = same_logits(model, tmodel, ids)
    print(f"3. torch.nn model loaded the file; largest logit difference on a batch: {gap:.2e}")
    if not gap < 1e-4:
        raise SystemExit(f"continue_in_pytorch: the two models disagree (gap {gap})")

    # 4. DDP
    second = out / "torch_ddp.safetensors"
    job = {"config": config, "vocab_size": len(vocab), "weights": str(first),
           "out_weights": str(second), "report": str(out / "ddp_report.json"),
           "train_ids": train_ids, "batch_size": args.batch_size, "seq_len": args.seq_len,
           "batcher": batcher.state_dict(), "steps": args.torch_steps, "lr": args.lr,
           "clip": args.clip, "seed": args.seed, "quiet": args.no_progress}
    print(f"4. PyTorch {torch.__version__}: DistributedDataParallel on {args.world_size} "
          f"processes ({BACKEND}, {DEVICE}), {args.batch_size // args.world_size} streams each")
    report = continue_in_torch(job, args.world_size)
    print(f"   {args.torch_steps} steps in {report['seconds']:.1f}s; weights identical on every "
          f"process (largest gap {report['max_weight_gap']:.1e})")

    # 5. back into minigrad
    back = build_model(config, len(vocab), args.seed + 1)
    back.load_state_dict(mg.load(second))
    bpc_torch = evaluate(back, val_ids)
    tmodel.load_state_dict(safetensors.torch.load_file(str(second)))
    gap_back = same_logits(back, tmodel, ids)
    text_out = sample(back, vocab, args.length, 0.8, "The ",
                      np.random.default_rng(args.seed))
    print(f"5. minigrad loaded {second}: validation {bpc_torch:.3f} bits/char (was "
          f"{bpc_minigrad:.3f}); logit difference to torch {gap_back:.2e}\n   sample: "
          f"{('The ' + text_out)!r}")
    return {"minigrad_losses": mg_losses, "torch_losses": report["losses"],
            "bpc_minigrad": bpc_minigrad, "bpc_after_torch": bpc_torch,
            "logit_gap": gap, "logit_gap_back": gap_back,
            "max_weight_gap": report["max_weight_gap"], "sample": text_out,
            "files": [str(first), str(second)]}


if __name__ == "__main__":
    main()
