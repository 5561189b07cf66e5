"""Sequence to sequence with attention: minigrad vs the same model in PyTorch eager (CPU).

The model of examples/seq2seq.py on its date pairs (English -> Korean, characters): Embedding ->
bidirectional GRU with lengths (torch: pack_padded_sequence) -> Linear bridge -> decoder GRU
over the target (teacher forcing) -> 'general' attention with the padding mask -> tanh(Linear
[h; context]) -> Linear scores. Timed, in one process, interleaved, median over ``--reps``:

- train: one training step, batch 32 (forward, cross-entropy ignoring padding, backward,
  clip_grad_norm_, Adam step);
- greedy: batched greedy decoding of ``--decode-batch`` sources, one decoder step at a time
  until every row emitted </s> (minigrad.decoding.greedy_decode; torch: the same loop); the
  minigrad decoder steps with its GRU layer on one step (fused kernel), and, a second row,
  with the GRU cell formula on the same weights (primitive graph).

Both models hold the same weights (copied), and the script checks that their losses and greedy
outputs agree before timing. Both libraries get ``--threads`` threads.

    python benchmarks/bench_seq2seq.py                  # ~1 minute
    python benchmarks/bench_seq2seq.py --threads 1 --reps 9
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import optim  # noqa: E402
from minigrad.data import date_pairs  # noqa: E402
from minigrad.nn.utils import clip_grad_norm_  # noqa: E402

import seq2seq as example  # noqa: E402
from _seq2seq_common import BOS, EOS, PAD, Tokens, decode, pad_batch  # noqa: E402

TF = torch.nn.functional


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=0, help="threads for both (default: cores)")
    p.add_argument("--reps", type=int, default=7, help="interleaved repetitions (median)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per repetition")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--decode-batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--embed", type=int, default=32)
    return p.parse_args(argv)


class TorchDecoder(torch.nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, key_size: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed, padding_idx=PAD)
        self.rnn = torch.nn.GRU(embed, hidden, batch_first=True)
        self.attn = torch.nn.Module()
        self.attn.key_proj = torch.nn.Linear(key_size, hidden, bias=False)
        self.combine = torch.nn.Linear(hidden + key_size, hidden)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, tokens, h, keys, proj, mask):
        out, h = self.rnn(self.embed(tokens), h[None])
        scores = out @ proj.transpose(1, 2)                             # (B, T, S)
        w = torch.softmax(scores.masked_fill(~mask[:, None, :], float("-inf")), dim=-1)
        mixed = torch.tanh(self.combine(torch.cat([out, w @ keys], dim=2)))
        return self.head(mixed), h[0]


class TorchTranslator(torch.nn.Module):
    """The example's Translator (GRU cell, general attention) in torch, same parameter names."""

    def __init__(self, src_vocab: int, tgt_vocab: int, embed: int, hidden: int):
        super().__init__()
        half = hidden // 2
        self.src_embed = torch.nn.Embedding(src_vocab, embed, padding_idx=PAD)
        self.encoder = torch.nn.GRU(embed, half, batch_first=True, bidirectional=True)
        self.bridge = torch.nn.Linear(2 * half, hidden)
        self.decoder = TorchDecoder(tgt_vocab, embed, hidden, 2 * half)

    def encode(self, src, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.src_embed(src), lengths,
                                                         batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                        total_length=src.shape[1])
        h0 = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=1)))
        mask = torch.arange(src.shape[1])[None, :] < lengths[:, None]
        return h0, out, self.decoder.attn.key_proj(out), mask

    def forward(self, src, lengths, tgt_in):
        h0, keys, proj, mask = self.encode(src, lengths)
        return self.decoder(tgt_in, h0, keys, proj, mask)[0]


def torch_greedy(model: TorchTranslator, src, lengths, max_len: int) -> np.ndarray:
    with torch.no_grad():
        h, keys, proj, mask = model.encode(src, lengths)
        tok = torch.full((src.shape[0], 1), BOS, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        out = []
        for _ in range(max_len):
            scores, h = model.decoder(tok, h, keys, proj, mask)
            nxt = torch.log_softmax(scores[:, 0].double(), dim=-1).argmax(dim=-1)
            nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
            out.append(nxt)
            done |= nxt == EOS
            if bool(done.all()):
                break
            tok = nxt[:, None]
    return torch.stack(out, dim=1).numpy()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    mg.set_num_threads(threads)
    pairs = date_pairs(4000, seed=0).train
    srcv = Tokens([c for s, _ in pairs for c in s])
    tgtv = Tokens([c for _, t in pairs for c in t])
    ex_args = example.parse_args(["--hidden", str(args.hidden), "--embed", str(args.embed)])
    rng = np.random.default_rng(0)
    m_model = example.Translator(len(srcv), len(tgtv), ex_args, rng)
    t_model = TorchTranslator(len(srcv), len(tgtv), args.embed, args.hidden)
    t_model.load_state_dict({k: torch.tensor(v.data) for k, v in m_model.named_parameters()})
    m_opt = optim.Adam(m_model.parameters(), lr=1e-3)
    t_opt = torch.optim.Adam(t_model.parameters(), lr=1e-3)

    def batch(i: int, size: int):
        sel = pairs[(i * size) % len(pairs):][:size]
        src, lengths = pad_batch([srcv.encode(s) for s, _ in sel])
        tgt, _ = pad_batch([tgtv.encode(t) for _, t in sel], bos=True, eos=True)
        return src, lengths, tgt

    train_batches = [batch(i, args.batch) for i in range(20)]
    t_train = [(torch.tensor(s), torch.tensor(l), torch.tensor(t)) for s, l, t in train_batches]

    def m_step(k: int) -> float:
        src, lengths, tgt = train_batches[k % len(train_batches)]
        scores, _ = m_model(src, lengths, tgt[:, :-1])
        loss = F.cross_entropy(scores, tgt[:, 1:], ignore_index=PAD)
        m_opt.zero_grad()
        loss.backward()
        clip_grad_norm_(m_model.parameters(), 5.0)
        m_opt.step()
        return loss.item()

    def t_step(k: int) -> float:
        src, lengths, tgt = t_train[k % len(t_train)]
        scores = t_model(src, lengths, tgt[:, :-1])
        loss = TF.cross_entropy(scores.reshape(-1, scores.shape[-1]), tgt[:, 1:].reshape(-1),
                                ignore_index=PAD)
        t_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(t_model.parameters(), 5.0)
        t_opt.step()
        return loss.item()

    # the two agree before timing: the first loss, then a few steps, then greedy outputs
    first_m, first_t = m_step(0), t_step(0)
    assert abs(first_m - first_t) < 1e-4 * abs(first_t), (first_m, first_t)
    for k in range(1, 40):                                   # train a little, both
        m_step(k), t_step(k)
    src, lengths, _ = batch(50, args.decode_batch)
    t_src, t_len = torch.tensor(src), torch.tensor(lengths)
    max_len = 30

    def m_greedy(cell: bool = False) -> np.ndarray:
        m_model.eval()
        with mg.no_grad():
            h0, keys, mask = m_model.encode(src, lengths)
            return decode(m_model.decoder, h0, keys, mask, max_len, cell=cell).tokens

    def t_greedy() -> np.ndarray:
        return torch_greedy(t_model, t_src, t_len, max_len)

    same = (m_greedy() == t_greedy()).mean() if m_greedy().shape == t_greedy().shape else 0.0
    assert (m_greedy(cell=True) == m_greedy()).all()
    print(f"threads {threads}; first loss minigrad {first_m:.6f} torch {first_t:.6f}; greedy "
          f"tokens equal after 40 steps: {same:.3f}")

    def timed(fn, n: int) -> float:
        t = time.perf_counter()
        for k in range(n):
            fn(k)
        return (time.perf_counter() - t) / n

    m_model.train()
    results: dict[str, list[float]] = {k: [] for k in ("m_train", "t_train", "m_dec", "t_dec",
                                                       "m_cell")}
    for _ in range(args.reps):
        results["m_train"].append(timed(m_step, args.steps))
        results["t_train"].append(timed(t_step, args.steps))
        results["m_dec"].append(timed(lambda k: m_greedy(), 3))
        results["t_dec"].append(timed(lambda k: t_greedy(), 3))
        results["m_cell"].append(timed(lambda k: m_greedy(cell=True), 3))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{'':28}{'minigrad':>12}{'torch':>12}{'torch/minigrad':>16}")
    print(f"{'train step (B=%d)' % args.batch:28}{med['m_train'] * 1e3:>10.2f}ms"
          f"{med['t_train'] * 1e3:>10.2f}ms{med['t_train'] / med['m_train']:>16.2f}")
    print(f"{'greedy decode (B=%d)' % args.decode_batch:28}{med['m_dec'] * 1e3:>10.2f}ms"
          f"{med['t_dec'] * 1e3:>10.2f}ms{med['t_dec'] / med['m_dec']:>16.2f}")
    print(f"{'  decoder as cell formula':28}{med['m_cell'] * 1e3:>10.2f}ms"
          f"{med['t_dec'] * 1e3:>10.2f}ms{med['t_dec'] / med['m_cell']:>16.2f}")


if __name__ == "__main__":
    main()
