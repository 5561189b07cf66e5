"""minigrad.save / load with a .safetensors name: the safetensors format through the
safetensors package (flat name -> array dicts), atomic writes, clear errors, no code run."""
import os
import pickle

import numpy as np
import pytest
from safetensors.numpy import load_file as st_load_file
from safetensors.numpy import save_file as st_save_file

import minigrad as mg
from minigrad import Tensor, io
from minigrad.nn.layers import Embedding, Linear, Sequential


def _arrays():
    rng = np.random.default_rng(0)
    return {"w": rng.standard_normal((3, 4)).astype(np.float32),
            "b": rng.standard_normal(4),                       # float64
            "ids": np.arange(5, dtype=np.int64), "mask": np.array([True, False]),
            "half": np.ones((2, 2), np.float16), "empty": np.zeros((0, 3), np.float32),
            "scalar": np.array(2.5, np.float32), "u8": np.arange(4, dtype=np.uint8),
            "big_endian": np.arange(3, dtype=">f4"), "strided": np.ones((3, 4))[:, ::2]}


def test_round_trip_and_readable_by_the_safetensors_package(tmp_path):
    arrays = _arrays()
    path = tmp_path / "w.safetensors"
    mg.save({**arrays, "t": Tensor(np.eye(2), dtype=np.float64)}, path,
            meta={"class": "LSTM", "hidden": 8})
    loaded, meta = mg.load(path, return_meta=True)
    assert isinstance(loaded, io.LoadedDict) and loaded.source == str(path)
    assert meta == {"class": "LSTM", "hidden": 8} and io.load_meta(path) == meta
    assert sorted(loaded) == sorted([*arrays, "t"])
    for k, v in arrays.items():
        assert loaded[k].dtype == v.dtype.newbyteorder("<") and loaded[k].shape == v.shape, k
        np.testing.assert_array_equal(loaded[k], v)
        assert loaded[k].flags.writeable
    np.testing.assert_array_equal(loaded["t"], np.eye(2))
    other = st_load_file(str(path))            # the package itself reads what minigrad wrote
    for k, v in arrays.items():
        np.testing.assert_array_equal(other[k], v)


def test_file_written_by_the_package_loads_and_keeps_its_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    arrays = _arrays()
    st_save_file(arrays, str(path), metadata={"format": "np", "note": "x"})
    loaded, meta = mg.load(path, return_meta=True)
    assert meta == {"format": "np", "note": "x"}
    for k, v in arrays.items():
        np.testing.assert_array_equal(loaded[k], v)


def test_module_state_dict_round_trip_and_mismatch_names_the_file(tmp_path):
    model = Sequential(Embedding(5, 3), Linear(3, 2))
    path = tmp_path / "m.safetensors"
    mg.save(model.state_dict(), path)
    other = Sequential(Embedding(5, 3), Linear(3, 2))
    other.load_state_dict(mg.load(path))
    for (name, p), (_, q) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    with pytest.raises(Exception, match=str(path)):
        Sequential(Embedding(6, 3), Linear(3, 2)).load_state_dict(mg.load(path))


def test_non_flat_or_non_array_content_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(io.CheckpointError, match=r"\['opt'\].*save nested training state "
                                                 r"as \.npz"):
        mg.save({"w": np.ones(2), "opt": {"lr": 1.0}}, path)
    with pytest.raises(io.CheckpointError, match="flat dict"):
        mg.save([np.ones(2)], path)
    with pytest.raises(io.CheckpointError, match="names are strings"):
        mg.save({0: np.ones(2)}, path)
    with pytest.raises(io.CheckpointError, match="dtype <U1"):
        mg.save({"s": np.array(["a"])}, path)
    with pytest.raises(io.CheckpointError, match="JSON"):
        mg.save({"w": np.ones(2)}, path, meta={"f": object()})
    assert not path.exists() and os.listdir(tmp_path) == []


def test_bad_files_are_checkpoint_errors_naming_the_file(tmp_path):
    good = tmp_path / "good.safetensors"
    mg.save({"w": np.arange(1000.0)}, good)
    data = good.read_bytes()
    npz = tmp_path / "ckpt.npz"
    mg.save({"w": np.ones(2)}, npz)
    cases = {"truncated": data[: len(data) // 2], "header_only": data[:40], "empty": b"",
             "garbage": b"definitely not a tensor file",
             "huge_length": (2**62).to_bytes(8, "little") + b"{}",
             "deep_json": (200_000).to_bytes(8, "little") + b"[" * 100_000 + b"]" * 100_000,
             "bad_meta": None, "npz_inside": npz.read_bytes(),
             "pickle": pickle.dumps({"w": [1.0, 2.0]})}
    meta_bad = b'{"__metadata__":{"minigrad.meta":"[1, 2"}}'
    cases["bad_meta"] = len(meta_bad).to_bytes(8, "little") + meta_bad
    for name, content in cases.items():
        bad = tmp_path / f"{name}.safetensors"
        bad.write_bytes(content)
        with pytest.raises(io.CheckpointError) as err:
            mg.load(bad)
        assert str(bad) in str(err.value), name


def test_crash_mid_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    mg.save({"w": np.zeros(10)}, path)
    before = path.read_bytes()

    def crashing(f, arrays, metadata):
        f.write(b"half a file")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(io, "_write_safetensors", crashing)
    with pytest.raises(OSError, match="simulated"):
        mg.save({"w": np.ones(10)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["w.safetensors"]


def test_extension_decides_the_format(tmp_path):
    arrays = {"w": np.ones(3, np.float32)}
    mg.save(arrays, tmp_path / "a.SafeTensors")
    assert (tmp_path / "a.SafeTensors").read_bytes()[8:9] == b"{"
    mg.save(arrays, tmp_path / "a.npz")
    assert (tmp_path / "a.npz").read_bytes()[:4] == b"PK\x03\x04"
    np.testing.assert_array_equal(mg.load(tmp_path / "a.SafeTensors")["w"],
                                  mg.load(tmp_path / "a.npz")["w"])
