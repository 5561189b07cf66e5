"""Checkpoints: ``save(obj, path, meta=None)`` and ``load(path)``, with no pickle anywhere.

A checkpoint is an ``.npz`` (zip) file. Its arrays are ``arr_0``, ``arr_1``, ...; the member
``__header__`` holds UTF-8 JSON as a uint8 array::

    {"format": "minigrad-checkpoint", "version": 1, "meta": {...}, "tree": <the object>}

The tree encodes the nested object: JSON numbers, strings, booleans, null and lists stand for
themselves; every JSON object is a tag — ``{"dict": [[key, value], ...]}`` (keys are str or int),
``{"tuple": [...]}``, ``{"array": "arr_3"}``, ``{"tensor": "arr_4"}``, ``{"scalar": "arr_5"}``
(a numpy scalar, keeping its dtype). Files are read with ``allow_pickle=False``, so loading
never runs code. Writes are atomic: a temp file in the same folder, flushed, fsynced, and moved
over the target with ``os.replace``; a crash mid-save leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from minigrad.tensor import Tensor

FORMAT = "minigrad-checkpoint"
VERSION = 1
_HEADER = "__header__"

__all__ = ["save", "load", "load_meta", "CheckpointError", "LoadedDict", "FORMAT", "VERSION"]


class CheckpointError(ValueError):
    """A checkpoint could not be written or read; the message names the file and the problem."""


class LoadedDict(dict):
    """A dict read from a checkpoint; ``.source`` is the file it came from (used in errors)."""

    source: str | None = None


# ---- encoding ------------------------------------------------------------------------------
def _encode(obj: Any, arrays: dict, where: str, path: str) -> Any:
    def add(arr: np.ndarray, tag: str) -> dict:
        if arr.dtype.hasobject or arr.dtype.kind not in "biufcSUM":
            raise CheckpointError(f"save {path!r}: {where} is an array of dtype {arr.dtype}, "
                                  "which cannot be stored without pickle")
        name = f"arr_{len(arrays)}"
        arrays[name] = arr
        return {tag: name}

    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, Tensor):
        return add(obj.data, "tensor")
    if isinstance(obj, np.ndarray):
        return add(obj, "array")
    if isinstance(obj, np.generic):
        return add(np.asarray(obj), "scalar")
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise CheckpointError(f"save {path!r}: {where} has key {k!r} of type "
                                      f"{type(k).__name__}; keys must be str or int")
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]", path)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        enc = [_encode(v, arrays, f"{where}[{i}]", path) for i, v in enumerate(obj)]
        return enc if isinstance(obj, list) else {"tuple": enc}
    raise CheckpointError(f"save {path!r}: {where} is a {type(obj).__name__}; a checkpoint "
                          "holds dicts, lists, tuples, ndarrays, Tensors, numbers, strings "
                          "and None (call .state_dict() on modules and optimizers)")


def _decode(node: Any, npz: Any, path: str) -> Any:
    if isinstance(node, list):
        return [_decode(v, npz, path) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise CheckpointError(f"load {path!r}: corrupt header (a node with keys {list(node)})")
    (tag, value), = node.items()
    if tag == "dict":
        out = LoadedDict((k, _decode(v, npz, path)) for k, v in value)
        out.source = path
        return out
    if tag == "tuple":
        return tuple(_decode(v, npz, path) for v in value)
    if tag in ("array", "tensor", "scalar"):
        if value not in npz.files:
            raise CheckpointError(f"load {path!r}: the header refers to array {value!r}, "
                                  "which the file does not contain (corrupt or truncated)")
        arr = npz[value]
        if tag == "tensor":
            return Tensor(arr, dtype=arr.dtype)
        return arr[()] if tag == "scalar" else arr
    raise CheckpointError(f"load {path!r}: corrupt header (unknown node type {tag!r})")


# ---- writing -------------------------------------------------------------------------------
def _write_npz(fileobj: Any, arrays: dict) -> None:
    """Write the arrays as an uncompressed npz into an open binary file."""
    np.savez(fileobj, **arrays)


def save(obj: Any, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write ``obj`` (nested dicts/lists of arrays, Tensors, numbers, strings, None) to ``path``.

    ``meta`` is a JSON-able dict stored in the header (class name, configuration, gate layout,
    ...); read it back with ``load(path, return_meta=True)`` or ``load_meta(path)``."""
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, arrays, "obj", path)
    header = {"format": FORMAT, "version": VERSION, "meta": meta or {}, "tree": tree}
    try:
        text = json.dumps(header)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"save {path!r}: meta is not JSON-serialisable: {exc}") from None
    arrays[_HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- reading -------------------------------------------------------------------------------
def _read_header(npz: Any, path: str) -> dict:
    if any(name.endswith(".pkl") for name in npz.zip.namelist()):
        raise CheckpointError(f"load {path!r}: a zip holding pickled data (a torch.save "
                              "file?); minigrad never unpickles, because unpickling can run "
                              "arbitrary code")
    if _HEADER not in npz.files:
        raise CheckpointError(f"load {path!r}: an npz file without a minigrad header (was it "
                              "written by numpy.savez rather than minigrad.save?)")
    try:
        header = json.loads(npz[_HEADER].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"load {path!r}: corrupt header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"load {path!r}: not a minigrad checkpoint (format "
                              f"{header.get('format') if isinstance(header, dict) else None!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(f"load {path!r}: checkpoint format version "
                              f"{header.get('version')!r}, but this minigrad reads version "
                              f"{VERSION}")
    return header


def _open(path: str) -> Any:
    if not os.path.exists(path):
        raise FileNotFoundError(f"load {path!r}: no such checkpoint file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:1] == b"\x80" or magic[:1] in (b"(", b"}", b"]"):
        raise CheckpointError(f"load {path!r}: this is a pickle file (torch.save / "
                              "pickle.dump?); minigrad never unpickles, because unpickling can "
                              "run arbitrary code. Convert the weights to arrays and "
                              "minigrad.save them")
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"load {path!r}: not a minigrad checkpoint (no npz/zip "
                              f"signature; the file starts with {magic!r})")
    try:
        return np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"load {path!r}: truncated or corrupt file: {exc}") from None


def load(path: str | os.PathLike, return_meta: bool = False) -> Any:
    """Read a checkpoint written by ``save``. Dicts come back as ``LoadedDict`` (remembering the
    file, so ``Module.load_state_dict`` errors name it); with ``return_meta`` -> (obj, meta)."""
    path = os.fspath(path)
    npz = _open(path)
    try:
        with npz:
            header = _read_header(npz, path)
            obj = _decode(header["tree"], npz, path)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, TypeError) as exc:
        raise CheckpointError(f"load {path!r}: truncated or corrupt file: "
                              f"{type(exc).__name__}: {exc}") from None
    return (obj, header.get("meta", {})) if return_meta else obj


def load_meta(path: str | os.PathLike) -> dict:
    """Only the ``meta`` dict of a checkpoint (arrays are not read)."""
    path = os.fspath(path)
    try:
        with _open(path) as npz:
            return _read_header(npz, path).get("meta", {})
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"load {path!r}: truncated or corrupt file: {exc}") from None
