"""Checkpoints: ``save(obj, path, meta=None)`` and ``load(path)``, with no pickle anywhere.

The format follows the file extension.

``*.safetensors`` — the field's weight format (Hugging Face's ``safetensors`` package, numpy
API): a flat ``{name: array}`` dict such as ``model.state_dict()``, readable as is by
``safetensors.torch.load_file`` and written by ``safetensors.torch.save_file``; PyTorch's
parameter names are minigrad's, so weights cross in both directions with no renaming.
``meta`` goes into the file's string metadata as JSON under the key ``minigrad.meta``. Use it
to hand weights to other tools.

Anything else (``*.npz`` by convention) — the full training state: nested dicts, lists and
tuples of arrays, Tensors, numbers, strings and None (model, optimizer, scheduler, RNG states
with 128-bit integers, data position, history). safetensors was considered for this too, but its
metadata holds only ``str -> str``, so the nested state would ride along as a JSON string that
no other tool reads: no gain over the npz below, so the npz stays for training state.

An npz checkpoint's arrays are ``arr_0``, ``arr_1``, ...; the member ``__header__`` holds
UTF-8 JSON as a uint8 array::

    {"format": "minigrad-checkpoint", "version": 1, "meta": {...}, "tree": <the object>}

The tree encodes the nested object: JSON numbers, strings, booleans, null and lists stand for
themselves; every JSON object is a tag — ``{"dict": [[key, value], ...]}`` (keys are str or int),
``{"tuple": [...]}``, ``{"array": "arr_3"}``, ``{"tensor": "arr_4"}``, ``{"scalar": "arr_5"}``
(a numpy scalar, keeping its dtype). Files are read with ``allow_pickle=False`` (and
safetensors files hold raw bytes only), so loading never runs code. Every failure to read is a
``CheckpointError`` naming the file and the problem. Writes are atomic in both formats: a temp
file in the same folder, flushed, fsynced, and moved over the target with ``os.replace``; a
crash mid-save leaves the previous file intact.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, Callable

import numpy as np

from minigrad.tensor import Tensor

FORMAT = "minigrad-checkpoint"
VERSION = 1
_HEADER = "__header__"
_ST_META = "minigrad.meta"
_MAX_DEPTH = 200  # nesting of a checkpoint's tree; state dicts need a handful of levels

__all__ = ["save", "load", "load_meta", "CheckpointError", "CheckpointNotFoundError",
           "LoadedDict", "FORMAT", "VERSION"]


class CheckpointError(ValueError):
    """A checkpoint could not be written or read; the message names the file and the problem."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (also a ``FileNotFoundError``)."""


class LoadedDict(dict):
    """A dict read from a checkpoint; ``.source`` is the file it came from (used in errors)."""

    source: str | None = None


def _is_safetensors(path: str) -> bool:
    return path.lower().endswith(".safetensors")


# ---- encoding ------------------------------------------------------------------------------
def _encode(obj: Any, arrays: dict, where: str, path: str, depth: int = 0) -> Any:
    def add(arr: np.ndarray, tag: str) -> dict:
        if arr.dtype.hasobject or arr.dtype.kind not in "biufcSUM":
            raise CheckpointError(f"save {path!r}: {where} is an array of dtype {arr.dtype}, "
                                  "which cannot be stored without pickle")
        name = f"arr_{len(arrays)}"
        arrays[name] = arr
        return {tag: name}

    if depth > _MAX_DEPTH:
        raise CheckpointError(f"save {path!r}: {where} is nested more than {_MAX_DEPTH} "
                              "levels deep")
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
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]", path, depth + 1)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        enc = [_encode(v, arrays, f"{where}[{i}]", path, depth + 1) for i, v in enumerate(obj)]
        return enc if isinstance(obj, list) else {"tuple": enc}
    raise CheckpointError(f"save {path!r}: {where} is a {type(obj).__name__}; a checkpoint "
                          "holds dicts, lists, tuples, ndarrays, Tensors, numbers, strings "
                          "and None (call .state_dict() on modules and optimizers)")


def _decode(node: Any, npz: Any, path: str, depth: int = 0) -> Any:
    """The object a header tree node stands for; every malformed node is a CheckpointError."""
    def corrupt(what: str) -> CheckpointError:
        return CheckpointError(f"load {path!r}: corrupt header ({what})")

    if depth > _MAX_DEPTH:
        raise corrupt(f"nested more than {_MAX_DEPTH} levels deep")
    if isinstance(node, list):
        return [_decode(v, npz, path, depth + 1) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        raise corrupt(f"a node with keys {list(node)[:5]}")
    (tag, value), = node.items()
    if tag == "dict":
        if not isinstance(value, list) or not all(
                isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], (str, int))
                and not isinstance(kv[0], bool) for kv in value):
            raise corrupt("a dict node is not a list of [str-or-int key, value] pairs")
        out = LoadedDict((k, _decode(v, npz, path, depth + 1)) for k, v in value)
        out.source = path
        return out
    if tag == "tuple":
        if not isinstance(value, list):
            raise corrupt(f"a tuple node holds a {type(value).__name__}, not a list")
        return tuple(_decode(v, npz, path, depth + 1) for v in value)
    if tag in ("array", "tensor", "scalar"):
        if not isinstance(value, str):
            raise corrupt(f"an {tag} node names {value!r}, not an array name")
        if value not in npz.files or value == _HEADER:
            raise CheckpointError(f"load {path!r}: the header refers to array {value!r}, "
                                  "which the file does not contain (corrupt or truncated)")
        arr = npz[value]
        if tag == "tensor":
            return Tensor(arr, dtype=arr.dtype)
        return arr[()] if tag == "scalar" else arr
    raise corrupt(f"unknown node type {tag!r}")


# ---- writing -------------------------------------------------------------------------------
def _write_npz(fileobj: Any, arrays: dict) -> None:
    """Write the arrays as an uncompressed npz into an open binary file."""
    np.savez(fileobj, **arrays)


def _write_safetensors(fileobj: Any, arrays: dict, metadata: dict[str, str]) -> None:
    """Write the arrays in the safetensors format into an open binary file."""
    from safetensors.numpy import save as st_save
    fileobj.write(st_save(arrays, metadata=metadata))


def _atomic_write(path: str, write: Callable[[Any], None]) -> None:
    """``write(f)`` into a temp file beside ``path``, fsync, then move it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _flat_arrays(obj: Any, path: str) -> dict[str, np.ndarray]:
    """The ``{name: array}`` a safetensors file holds, checked and made little-endian C order."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"save {path!r}: a .safetensors file holds a flat dict of "
                              f"name -> array (e.g. model.state_dict()), got a "
                              f"{type(obj).__name__}; save full training state as .npz")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise CheckpointError(f"save {path!r}: key {k!r} is a {type(k).__name__}; "
                                  "safetensors names are strings")
        arr = v.data if isinstance(v, Tensor) else v
        if isinstance(arr, np.generic):
            arr = np.asarray(arr)
        if not isinstance(arr, np.ndarray):
            raise CheckpointError(f"save {path!r}: [{k!r}] is a {type(v).__name__}; a "
                                  ".safetensors file holds arrays only (save nested training "
                                  "state as .npz)")
        if arr.dtype.kind not in "biuf" and arr.dtype != np.complex64:
            raise CheckpointError(f"save {path!r}: [{k!r}] has dtype {arr.dtype}, which "
                                  "safetensors cannot store")
        out[k] = np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")  # keeps 0-d
    return out


def save(obj: Any, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write ``obj`` to ``path``; the format follows the extension.

    ``*.safetensors``: ``obj`` is a flat dict of name -> ndarray/Tensor (a state_dict), for
    PyTorch and other tools. Any other name: nested dicts/lists/tuples of arrays, Tensors,
    numbers, strings, None in minigrad's npz checkpoint (full training state). ``meta`` is a
    JSON-able dict kept with the file; read it back with ``load(path, return_meta=True)`` or
    ``load_meta(path)``. Writes are atomic."""
    path = os.fspath(path)
    try:
        text = json.dumps(meta or {})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"save {path!r}: meta is not JSON-serialisable: {exc}") from None
    if _is_safetensors(path):
        arrays = _flat_arrays(obj, path)
        _atomic_write(path, lambda f: _write_safetensors(f, arrays, {_ST_META: text}))
        return
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, arrays, "obj", path)
    header = {"format": FORMAT, "version": VERSION, "meta": meta or {}, "tree": tree}
    arrays[_HEADER] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    _atomic_write(path, lambda f: _write_npz(f, arrays))


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
        raw = npz[_HEADER]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise CheckpointError(f"load {path!r}: corrupt header (an array of {raw.dtype} "
                                  f"{raw.shape}, not UTF-8 bytes)")
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"load {path!r}: corrupt header: {exc}") from None
    except RecursionError:
        raise CheckpointError(f"load {path!r}: corrupt header (JSON nested too deeply to "
                              "read)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"load {path!r}: not a minigrad checkpoint (format "
                              f"{header.get('format') if isinstance(header, dict) else None!r})")
    if header.get("version") != VERSION:
        raise CheckpointError(f"load {path!r}: checkpoint format version "
                              f"{header.get('version')!r}, but this minigrad reads version "
                              f"{VERSION}")
    if "tree" not in header:
        raise CheckpointError(f"load {path!r}: corrupt header (no 'tree' entry)")
    if not isinstance(header.get("meta", {}), dict):
        raise CheckpointError(f"load {path!r}: corrupt header ('meta' is a "
                              f"{type(header['meta']).__name__}, not an object)")
    return header


def _check_file(path: str) -> bytes:
    """The first bytes of the file, after checking it is a readable regular file."""
    if not os.path.exists(path):
        raise CheckpointNotFoundError(f"load {path!r}: no such checkpoint file")
    if os.path.isdir(path):
        raise CheckpointError(f"load {path!r}: is a directory, not a checkpoint file")
    try:
        with open(path, "rb") as f:
            return f.read(8)
    except OSError as exc:
        raise CheckpointError(f"load {path!r}: cannot be read: {exc.strerror or exc}") from None


def _open(path: str) -> Any:
    magic = _check_file(path)[:4]
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


def _load_safetensors(path: str) -> tuple[LoadedDict, dict]:
    """(arrays, meta) of a safetensors file; the library's error for anything unreadable."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load
    _check_file(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
        arrays = st_load(data)      # validates the header, offsets and dtypes
        size = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8:8 + size]).get("__metadata__") or {}
    except (SafetensorError, OSError, ValueError, TypeError, AttributeError,
            RecursionError) as exc:
        raise CheckpointError(f"load {path!r}: not a readable safetensors file "
                              f"({type(exc).__name__}: {exc})") from None
    out = LoadedDict((k, a if a.flags.writeable else a.copy()) for k, a in arrays.items())
    out.source = path
    meta: Any = {k: v for k, v in metadata.items() if k != _ST_META}
    if _ST_META in metadata:
        try:
            meta = json.loads(metadata[_ST_META])
        except (json.JSONDecodeError, RecursionError) as exc:
            raise CheckpointError(f"load {path!r}: corrupt {_ST_META!r} metadata: "
                                  f"{exc}") from None
        if not isinstance(meta, dict):
            raise CheckpointError(f"load {path!r}: corrupt {_ST_META!r} metadata (a "
                                  f"{type(meta).__name__}, not an object)")
    return out, meta


def _read_failure(path: str, exc: BaseException) -> CheckpointError:
    if isinstance(exc, RecursionError):
        return CheckpointError(f"load {path!r}: corrupt header (nested too deeply to read)")
    return CheckpointError(f"load {path!r}: truncated or corrupt file: "
                           f"{type(exc).__name__}: {exc}")


def load(path: str | os.PathLike, return_meta: bool = False) -> Any:
    """Read a checkpoint written by ``save`` (the format follows the extension, as there).

    A ``.safetensors`` file gives a dict of name -> ndarray (any tool's safetensors file
    works); an npz checkpoint gives back the saved object. Dicts come back as ``LoadedDict``
    (remembering the file, so ``Module.load_state_dict`` errors name it); with
    ``return_meta`` -> (obj, meta). Any failure is a ``CheckpointError`` naming the file."""
    path = os.fspath(path)
    if _is_safetensors(path):
        obj, meta = _load_safetensors(path)
        return (obj, meta) if return_meta else obj
    npz = _open(path)
    try:
        with npz:
            header = _read_header(npz, path)
            obj = _decode(header["tree"], npz, path)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, TypeError,
            AttributeError, RecursionError) as exc:
        raise _read_failure(path, exc) from None
    return (obj, header.get("meta", {})) if return_meta else obj


def load_meta(path: str | os.PathLike) -> dict:
    """Only the ``meta`` dict of a checkpoint (npz arrays are not read)."""
    path = os.fspath(path)
    if _is_safetensors(path):
        return _load_safetensors(path)[1]
    try:
        with _open(path) as npz:
            return _read_header(npz, path).get("meta", {})
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, TypeError,
            AttributeError, RecursionError) as exc:
        raise _read_failure(path, exc) from None
