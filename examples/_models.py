"""The text classifier shared by classify.py and sentiment.py: the model, its learning-rate
schedule, and the helpers that turn token lists into ids and score a model."""
from __future__ import annotations

import numpy as np

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import optim
from minigrad.data import Vocab, bucket_batches, pad_sequences

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class TextClassifier(nn.Module):
    """Embedding -> (Bi)GRU/LSTM over the real steps -> pooling -> Linear.

    With ``ngram_vocab_size`` > 0, each step's input is the token's embedding plus the
    embeddings of the n-grams of tokens ending there (``minigrad.data.ngram_tokens``; ids
    shaped ``(B, T, orders)``, one table for all orders). With ``lm=True``, ``lm_loss`` gives
    an auxiliary language-model loss: each direction's output at a step predicts the next
    token in its reading direction (forward: the token after, backward: the token before)."""

    def __init__(self, vocab_size: int, num_classes: int, cell: str, embed: int, hidden: int,
                 bidirectional: bool, pooling: str, dropout: float,
                 rng: np.random.Generator, ngram_vocab_size: int = 0, lm: bool = False):
        super().__init__()
        self.pooling, self.hidden, self.last_out = pooling, hidden, None
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=0, rng=rng)
        self.ngram_embed = (nn.Embedding(ngram_vocab_size, embed, padding_idx=0, rng=rng)
                            if ngram_vocab_size else None)
        self.rnn = CELLS[cell](embed, hidden, batch_first=True, bidirectional=bidirectional,
                               rng=rng)
        self.drop = nn.Dropout(dropout, rng=rng)
        features = hidden * (2 if bidirectional else 1) * (2 if pooling == "meanmax" else 1)
        self.head = nn.Linear(features, num_classes, rng=rng)
        self.lm_heads = (nn.ModuleList([nn.Linear(hidden, vocab_size, rng=rng)
                                        for _ in range(2 if bidirectional else 1)])
                         if lm else None)

    def lm_loss(self, ids: np.ndarray) -> mg.Tensor:
        """Mean cross-entropy of predicting, from the last forward pass's outputs, the next
        token of each direction (padding neither predicts nor is predicted)."""
        out, h = self.last_out, self.hidden
        if out is None or ids.shape[1] < 2:   # nothing to predict (or no training pass)
            return mg.Tensor(np.float32(0.0))
        after = np.where(ids[:, 1:] == 0, -100, ids[:, 1:])         # forward: step t -> t+1
        before = np.where(ids[:, 1:] == 0, -100, ids[:, :-1])       # backward: t+1 -> t
        loss = F.cross_entropy(self.lm_heads[0](self.drop(out[:, :-1, :h])), after)
        if len(self.lm_heads) == 2:
            loss = (loss + F.cross_entropy(self.lm_heads[1](self.drop(out[:, 1:, h:])),
                                           before)) * 0.5
        return loss

    def forward(self, ids: np.ndarray, lengths: np.ndarray,
                ngram_ids: np.ndarray | None = None) -> mg.Tensor:
        x = self.embed(ids)
        if self.ngram_embed is not None:
            x = x + self.ngram_embed(ngram_ids).sum(axis=2)
        out, h_n = self.rnn(self.drop(x), lengths=lengths)  # (B, T, D*H)
        self.last_out = out if self.lm_heads is not None and self.training else None
        if isinstance(h_n, tuple):
            h_n = h_n[0]
        feats = []
        if self.pooling in ("mean", "meanmax"):
            # outputs past a row's length are zero, so the sum covers the real steps only
            count = np.maximum(lengths, 1).astype(np.float32)[:, None]
            feats.append(out.sum(axis=1) / mg.Tensor(count))
        if self.pooling in ("max", "meanmax"):
            valid = np.arange(out.shape[1])[None, :] < lengths[:, None]     # (B, T)
            penalty = np.where(valid, 0.0, -1e4).astype(np.float32)[:, :, None]
            feats.append((out + mg.Tensor(penalty)).max(axis=1))
        if self.pooling == "last":  # final state of each direction (forward: own last step)
            feats.extend(h_n[i] for i in range(h_n.shape[0]))
        x = feats[0] if len(feats) == 1 else mg.concat(feats, axis=1)
        return self.head(self.drop(x))


class LinearDecay(optim.LRScheduler):
    """The learning rate falls linearly by ``decay`` of its initial value over ``epochs``
    epochs: the last epoch runs at (1 - decay) times it. ``minigrad.train.fit`` steps it after
    each epoch."""

    def __init__(self, optimizer: optim.Optimizer, epochs: int, decay: float = 0.7) -> None:
        self.epochs, self.decay = epochs, decay
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        span = max(self.epochs - 1, 1)
        t = min(self.last_epoch, span)
        return [base * (1.0 - self.decay * t / span) for base in self.base_lrs]


def encode(token_lists: list[list[str]], vocab: Vocab, max_len: int, truncate: str
           ) -> list[list[int]]:
    """Token ids per text, cut to ``max_len``; an empty text becomes one <unk>."""
    out = []
    for tokens in token_lists:
        ids = vocab.encode(tokens) or [vocab.unk_index]
        if len(ids) > max_len:
            ids = ids[:max_len] if truncate == "end" else ids[len(ids) - max_len:]
        out.append(ids)
    return out


def pad_grams(per_text: list[list[list[int]]]) -> np.ndarray:
    """Stack the n-gram ids of a batch, one id list per order per text (all of a text's lists
    as long as the text), into ``(B, T, orders)`` int64, padded with 0."""
    return np.stack([pad_sequences(list(order))[0] for order in zip(*per_text)], axis=2)


def predict_proba(model: TextClassifier, seqs: list[list[int]],
                  ngram_seqs: list[list[int]] | None = None, batch_size: int = 256
                  ) -> np.ndarray:
    """Class probabilities (softmax of the logits), one row per text of ``seqs``; the model
    in eval mode, no graph."""
    lengths = np.array([len(s) for s in seqs])
    out = np.zeros((len(seqs), model.head.weight.shape[0]), dtype=np.float64)
    model.eval()
    with mg.no_grad():
        for idx in bucket_batches(lengths, batch_size, shuffle=False):
            x, lens = pad_sequences([seqs[i] for i in idx])
            g = None if ngram_seqs is None else pad_grams([ngram_seqs[i] for i in idx])
            logits = model(x, lens, g).data.astype(np.float64)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            out[idx] = e / e.sum(axis=1, keepdims=True)
    model.train()
    return out


def predict(model: TextClassifier, seqs: list[list[int]],
            ngram_seqs: list[list[int]] | None = None, batch_size: int = 256) -> np.ndarray:
    """The predicted class of each of ``seqs`` (the model in eval mode, no graph)."""
    return predict_proba(model, seqs, ngram_seqs, batch_size).argmax(axis=1)
