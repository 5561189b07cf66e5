"""Checkpoints: round trips, refusal of pickles, corrupt files, versions, atomic writes."""
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor, io, optim
from minigrad.nn.layers import Embedding, Linear, Sequential
from minigrad.nn.module import StateDictError


def _nested():
    rng = np.random.default_rng(0)
    return {
        "model": {"0.weight": rng.standard_normal((3, 4)).astype(np.float32),
                  "0.bias": np.arange(3, dtype=np.int64)},
        "optimizer": {"state": {0: {"step": 7, "exp_avg": rng.standard_normal(4)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "amsgrad": False,
                                        "params": [0, 1], "name": "main"}]},
        "position": {"epoch": 3, "batch": 12, "done": None},
        "rng": np.random.default_rng(5).bit_generator.state,  # 128-bit ints
        "tensor": Tensor(np.ones((2, 2)), dtype=np.float64),
        "scalars": [np.float32(1.5), np.int16(-3), 2.5, float("inf"), True, "text", [], {}],
        "empty": np.zeros((0, 3)),
    }


def _assert_same(a, b):
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict)), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, Tensor):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.data, b.data)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def test_round_trip_of_nested_state(tmp_path):
    obj = _nested()
    path = tmp_path / "ckpt.npz"
    mg_save(obj, path, meta={"class": "LSTM", "gates": "ifgo", "hidden_size": 8})
    loaded, meta = io.load(path, return_meta=True)
    _assert_same(obj, loaded)
    assert meta == {"class": "LSTM", "gates": "ifgo", "hidden_size": 8}
    assert io.load_meta(path)["gates"] == "ifgo"
    np.random.default_rng().bit_generator.state = loaded["rng"]  # a usable RNG state


def mg_save(obj, path, **kw):
    """Through the public name when minigrad/__init__ exports it, else the module."""
    save = getattr(mg, "save", io.save)
    save(obj, path, **kw)


def test_model_and_optimizer_round_trip_and_shape_error_names_file(tmp_path):
    model = Sequential(Embedding(5, 3), Linear(3, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    path = tmp_path / "m.npz"
    io.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    ckpt = io.load(path)
    other = Sequential(Embedding(5, 3), Linear(3, 2))
    other.load_state_dict(ckpt["model"])
    opt2 = optim.Adam(other.parameters())
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01
    np.testing.assert_array_equal(opt2.state[other[1].weight]["exp_avg"],
                                  opt.state[model[1].weight]["exp_avg"])
    wrong = Sequential(Embedding(6, 3), Linear(3, 2))
    with pytest.raises(StateDictError) as err:
        wrong.load_state_dict(ckpt["model"])
    assert str(path) in str(err.value) and "0.weight" in str(err.value)
    assert "(5, 3)" in str(err.value) and "(6, 3)" in str(err.value)


class _Evil:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_file_is_rejected_and_never_executed(tmp_path):
    marker = tmp_path / "pwned.txt"
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"evil{protocol}.pkl"
        path.write_bytes(pickle.dumps({"w": _Evil(str(marker))}, protocol=protocol))
        with pytest.raises(io.CheckpointError, match="pickle") as err:
            io.load(path)
        assert str(path) in str(err.value)
        assert not marker.exists()


def test_npz_with_pickled_object_array_is_rejected(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "obj.npz"
    good = tmp_path / "good.npz"
    io.save({"a": np.zeros(2)}, good)
    with zipfile.ZipFile(good) as z:
        header = z.read("__header__.npy")
    obj = np.empty(1, dtype=object)
    obj[0] = _Evil(str(marker))
    with open(tmp_path / "arr.npy", "wb") as f:
        np.save(f, obj, allow_pickle=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__header__.npy", header)
        z.write(tmp_path / "arr.npy", "arr_0.npy")
    with pytest.raises(io.CheckpointError, match=str(path)):
        io.load(path)
    assert not marker.exists()


def test_torch_save_file_is_rejected(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(io.CheckpointError, match="pickled"):
        io.load(path)


def test_truncated_and_corrupt_files(tmp_path):
    path = tmp_path / "ok.npz"
    io.save({"w": np.arange(1000.0), "b": np.ones(10)}, path)
    data = path.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "tiny.npz": data[:3],
        "empty.npz": b"",
        "garbage.npz": b"this is not a checkpoint at all",
    }
    flipped = bytearray(data)
    flipped[200:260] = bytes(60)  # zero out part of the first array's bytes: CRC mismatch
    cases["bitrot.npz"] = bytes(flipped)
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(io.CheckpointError) as err:
            io.load(bad)
        assert str(bad) in str(err.value), name
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        io.load(tmp_path / "missing.npz")


def _rewrite_header(src, dst, change):
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    with open(src, "rb") as f:
        npz = np.load(f, allow_pickle=False)
        header = json.loads(npz["__header__"].tobytes())
    change(header)
    arr = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with zipfile.ZipFile(dst, "w") as z:
        for n, content in members.items():
            if n == "__header__.npy":
                with z.open(n, "w") as f:
                    np.lib.format.write_array(f, arr)
            else:
                z.writestr(n, content)


def test_wrong_format_version_and_foreign_npz(tmp_path):
    path = tmp_path / "v1.npz"
    io.save({"w": np.ones(2)}, path)
    future = tmp_path / "v99.npz"
    _rewrite_header(path, future, lambda h: h.update(version=99))
    with pytest.raises(io.CheckpointError, match=r"version 99.*reads version 1") as err:
        io.load(future)
    assert str(future) in str(err.value)
    foreign = tmp_path / "plain.npz"
    np.savez(foreign, w=np.ones(2))
    with pytest.raises(io.CheckpointError, match="without a minigrad header"):
        io.load(foreign)
    other_format = tmp_path / "other.npz"
    _rewrite_header(path, other_format, lambda h: h.update(format="something-else"))
    with pytest.raises(io.CheckpointError, match="not a minigrad checkpoint"):
        io.load(other_format)


def test_save_rejects_unsupported_values(tmp_path):
    with pytest.raises(io.CheckpointError, match=r"obj\['f'\].*function"):
        io.save({"f": len}, tmp_path / "x.npz")
    with pytest.raises(io.CheckpointError, match="dtype object"):
        io.save({"a": np.array([None, 1])}, tmp_path / "x.npz")
    with pytest.raises(io.CheckpointError, match="JSON"):
        io.save({}, tmp_path / "x.npz", meta={"bad": object()})
    assert not (tmp_path / "x.npz").exists()


def test_crash_mid_save_keeps_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    io.save({"w": np.zeros(100)}, path)
    before = path.read_bytes()

    def crashing_writer(f, arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(io, "_write_npz", crashing_writer)
    with pytest.raises(OSError, match="simulated"):
        io.save({"w": np.ones(100)}, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    np.testing.assert_array_equal(io.load(path)["w"], np.zeros(100))
    monkeypatch.undo()
    io.save({"w": np.ones(100)}, path)
    np.testing.assert_array_equal(io.load(path)["w"], np.ones(100))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_save_uses_fsync_and_replace(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda a, b: (calls.append(("replace", os.path.dirname(a))),
                                      real_replace(a, b))[1])
    io.save({"w": np.ones(3)}, tmp_path / "c.npz")
    assert calls[0] == "fsync"
    assert ("replace", str(tmp_path)) in calls  # the temp file lives in the target's folder


def test_load_never_allows_pickle(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    io.save(_nested(), path)
    seen = []
    real_load = np.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    io.load(path)
    io.load_meta(path)
    assert seen and all(flag is False for flag in seen)


# ---- every load failure is a CheckpointError naming the file (issue 11, item 8) -----------
def test_directory_and_missing_file_are_checkpoint_errors(tmp_path):
    for path in (tmp_path, tmp_path / "m.safetensors"):
        if path.suffix:
            path.mkdir()
        with pytest.raises(io.CheckpointError, match="is a directory") as err:
            io.load(path)
        assert str(path) in str(err.value)
        with pytest.raises(io.CheckpointError, match="is a directory"):
            io.load_meta(path)
    for name in ("missing.npz", "missing.safetensors"):
        with pytest.raises(io.CheckpointError, match="no such checkpoint file") as err:
            io.load(tmp_path / name)
        assert str(tmp_path / name) in str(err.value)
        assert isinstance(err.value, FileNotFoundError)   # callers catching that still work


def test_unreadable_file_is_a_checkpoint_error(tmp_path, monkeypatch):
    path = tmp_path / "locked.npz"
    io.save({"w": np.ones(2)}, path)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io, "open", denied, raising=False)   # what an unreadable file does
    with pytest.raises(io.CheckpointError, match="cannot be read: Permission denied") as err:
        io.load(path)
    assert str(path) in str(err.value)


def _with_header(tmp_path, name, header_text):
    """An npz with one array and the given raw header text."""
    path = tmp_path / name
    arr = np.frombuffer(header_text.encode(), dtype=np.uint8)
    np.savez(path, __header__=arr, arr_0=np.arange(3.0))
    return path


def test_deeply_nested_header_is_a_checkpoint_error(tmp_path):
    base = '{"format": "minigrad-checkpoint", "version": 1, "meta": {}, "tree": %s}'
    for depth in (300, 100_000):           # parseable JSON but too deep; too deep for json
        path = _with_header(tmp_path, f"deep{depth}.npz", base % ("[" * depth + "]" * depth))
        with pytest.raises(io.CheckpointError, match="nested") as err:
            io.load(path)
        assert str(path) in str(err.value)
    path = _with_header(tmp_path, "deepmeta.npz", base.replace('"meta": {}', '"meta": '
                                                              + "[" * 100_000 + "]" * 100_000)
                        % "null")
    with pytest.raises(io.CheckpointError, match="nested"):
        io.load_meta(path)
    with pytest.raises(io.CheckpointError, match=r"obj\[0\]\[0\].*nested more than"):
        nested: list = []
        for _ in range(10_000):
            nested = [nested]
        io.save(nested, tmp_path / "x.npz")


@pytest.mark.parametrize("tree, meta, message", [
    ('{"dict": {"a": 1}}', "{}", "not a list of"),
    ('{"dict": [[[1], 2]]}', "{}", "not a list of"),
    ('{"dict": [["a"]]}', "{}", "not a list of"),
    ('{"tuple": 5}', "{}", "tuple node holds a int"),
    ('{"array": ["arr_0"]}', "{}", "not an array name"),
    ('{"tensor": "__header__"}', "{}", "does not contain"),
    ('{"array": "arr_9"}', "{}", "does not contain"),
    ('{"frozenset": []}', "{}", "unknown node type"),
    ('{"array": "arr_0", "x": 1}', "{}", "a node with keys"),
    ('{"array": "arr_0"}', "5", "'meta' is a int"),
])
def test_wrong_types_in_header_are_checkpoint_errors(tmp_path, tree, meta, message):
    path = _with_header(tmp_path, "bad.npz", '{"format": "minigrad-checkpoint", "version": 1, '
                        f'"meta": {meta}, "tree": {tree}}}')
    with pytest.raises(io.CheckpointError, match=message) as err:
        io.load(path, return_meta=True)
    assert str(path) in str(err.value)


def test_header_without_tree_or_of_wrong_dtype(tmp_path):
    path = _with_header(tmp_path, "notree.npz", '{"format": "minigrad-checkpoint", '
                        '"version": 1}')
    with pytest.raises(io.CheckpointError, match="no 'tree'"):
        io.load(path)
    wrong = tmp_path / "f32.npz"
    np.savez(wrong, __header__=np.zeros(3, np.float32))
    with pytest.raises(io.CheckpointError, match="corrupt header") as err:
        io.load(wrong)
    assert str(wrong) in str(err.value)
