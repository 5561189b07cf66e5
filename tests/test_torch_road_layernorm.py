"""LayerNorm weights cross between minigrad and PyTorch through safetensors files, with no
renaming, and give the same outputs (the recurrent layers' road is tests/test_torch_road.py)."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as mnn

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")


class MgNormed(mnn.Module):
    def __init__(self):
        super().__init__()
        self.proj = mnn.Linear(6, 8, rng=0)
        self.norm = mnn.LayerNorm(8)

    def forward(self, x):
        return self.norm(self.proj(x))


class TorchNormed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(6, 8)
        self.norm = torch.nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(self.proj(x))


def _input():
    return np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)


def test_minigrad_layernorm_loads_into_torch(tmp_path):
    model = MgNormed()
    rng = np.random.default_rng(2)
    for p in model.parameters():            # not the initial ones and zeros
        p.data[...] = rng.standard_normal(p.shape)
    path = tmp_path / "m.safetensors"
    mg.save(model.state_dict(), path)
    twin = TorchNormed()
    twin.load_state_dict(st_torch.load_file(str(path)))
    got = twin(torch.from_numpy(_input())).detach().numpy()
    np.testing.assert_allclose(got, model(mg.tensor(_input())).numpy(), rtol=1e-5, atol=1e-5)


def test_torch_layernorm_loads_into_minigrad(tmp_path):
    twin = TorchNormed()
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.randn_like(p))
    path = tmp_path / "t.safetensors"
    st_torch.save_file(twin.state_dict(), str(path))
    model = MgNormed()
    model.load_state_dict(mg.load(path))
    want = twin(torch.from_numpy(_input())).detach().numpy()
    np.testing.assert_allclose(model(mg.tensor(_input())).numpy(), want, rtol=1e-5, atol=1e-5)
