"""Weights cross between minigrad and PyTorch through safetensors files with no renaming:
minigrad.save -> safetensors.torch.load_file -> torch load_state_dict, and
safetensors.torch.save_file -> minigrad.load -> load_state_dict; the outputs then match."""
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as mnn

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")

V, E, H, B, T = 11, 6, 5, 3, 7
CELLS = {"rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
         "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
         "lstm": ("LSTM", {}), "gru": ("GRU", {})}


class MgNet(mnn.Module):
    """Embedding -> 2-layer bidirectional recurrent layer -> Linear, in minigrad."""

    def __init__(self, cell, fused, seed):
        super().__init__()
        kind, extra = CELLS[cell]
        rng = np.random.default_rng(seed)
        self.embed = mnn.Embedding(V, E, rng=rng)
        self.rnn = getattr(mnn, kind)(E, H, num_layers=2, bidirectional=True, batch_first=True,
                                      fused=fused, rng=rng, **extra)
        self.head = mnn.Linear(2 * H, V, rng=rng)

    def forward(self, ids):
        out, state = self.rnn(self.embed(ids))
        h_n = state[0] if isinstance(state, tuple) else state
        return self.head(out), h_n


class TorchNet(torch.nn.Module):
    """The same network in PyTorch, with the same attribute names."""

    def __init__(self, cell):
        super().__init__()
        kind, extra = CELLS[cell]
        self.embed = torch.nn.Embedding(V, E)
        self.rnn = getattr(torch.nn, kind)(E, H, num_layers=2, bidirectional=True,
                                           batch_first=True, **extra)
        self.head = torch.nn.Linear(2 * H, V)

    def forward(self, ids):
        out, state = self.rnn(self.embed(ids))
        h_n = state[0] if isinstance(state, tuple) else state
        return self.head(out), h_n


def _ids():
    return np.random.default_rng(1).integers(0, V, size=(B, T))


def _assert_same_outputs(mg_model, torch_model):
    ids = _ids()
    with mg.no_grad():
        logits, h_n = mg_model(mg.tensor(ids))
    with torch.no_grad():
        t_logits, t_h = torch_model(torch.from_numpy(ids))
    np.testing.assert_allclose(logits.numpy(), t_logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_n.numpy(), t_h.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "graph"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_minigrad_weights_load_into_torch(tmp_path, cell, fused):
    model = MgNet(cell, fused, seed=3)
    path = tmp_path / "mg.safetensors"
    mg.save(model.state_dict(), path)
    torch_model = TorchNet(cell)
    result = torch_model.load_state_dict(st_torch.load_file(str(path)), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    _assert_same_outputs(model, torch_model)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "graph"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_torch_weights_load_into_minigrad(tmp_path, cell, fused):
    torch.manual_seed(4)
    torch_model = TorchNet(cell)
    path = tmp_path / "torch.safetensors"
    st_torch.save_file(torch_model.state_dict(), str(path))
    model = MgNet(cell, fused, seed=99)          # different initial weights
    before = model.head.weight.numpy().copy()
    model.load_state_dict(mg.load(path), strict=True)
    assert not np.allclose(before, model.head.weight.numpy())
    assert sorted(dict(model.named_parameters())) == sorted(torch_model.state_dict())
    _assert_same_outputs(model, torch_model)


def test_a_torch_model_with_other_names_is_refused_with_the_keys(tmp_path):
    torch.manual_seed(0)
    other = torch.nn.Sequential(torch.nn.Embedding(V, E), torch.nn.Linear(E, V))
    path = tmp_path / "seq.safetensors"
    st_torch.save_file(other.state_dict(), str(path))
    with pytest.raises(Exception, match=r"missing keys.*embed\.weight") as err:
        MgNet("gru", True, 0).load_state_dict(mg.load(path))
    assert str(path) in str(err.value) and "0.weight" in str(err.value)


# ---- examples/continue_in_pytorch.py: minigrad -> safetensors -> DDP on 2 processes -> back --
def _example():
    import importlib
    import sys
    from pathlib import Path
    folder = str(Path(__file__).resolve().parent.parent / "examples")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("continue_in_pytorch")


def test_continue_in_pytorch_help(capsys):
    with pytest.raises(SystemExit) as e:
        _example().main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--world-size" in out and "--torch-steps" in out and "--seed" in out


def test_continue_in_pytorch_round_trip_with_ddp(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 60, encoding="utf-8")
    out = tmp_path / "run"
    r = _example().main(["--text", str(text), "--hidden", "12", "--embed", "6",
                         "--steps", "30", "--torch-steps", "30", "--seq-len", "8",
                         "--batch-size", "4", "--lr", "0.01", "--length", "25",
                         "--no-progress", "--out", str(out)])
    assert r["logit_gap"] < 1e-4 and r["logit_gap_back"] < 1e-4
    assert r["max_weight_gap"] == 0.0                   # DDP kept both processes in step
    assert len(r["torch_losses"]) == 30
    assert r["bpc_after_torch"] < r["bpc_minigrad"]     # training went on in PyTorch
    assert len(r["sample"]) == 25 and set(r["sample"]) <= set(text.read_text())
    for f in r["files"]:
        assert Path(f).exists() and Path(f).parent == out
    assert "weights identical on every process" in capsys.readouterr().out
