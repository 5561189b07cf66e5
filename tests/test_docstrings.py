"""help() shows a real docstring for every public class of minigrad.nn (and each public method
it defines) and for the public functions and classes of optim, data, io, train and decoding
(minigrad, Tensor and nn.functional: tests/test_tensor_api.py)."""
import importlib
import inspect

import pytest


def _undocumented(module_name):
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    missing = []
    for name in names:
        obj = getattr(module, name, None)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                # what help() shows: an override without a docstring shows its base's
                if not (inspect.getdoc(getattr(obj, attr)) or "").strip():
                    missing.append(f"{name}.{attr}")
    return missing


@pytest.mark.parametrize("module_name", ["minigrad.nn", "minigrad.optim", "minigrad.data",
                                         "minigrad.io", "minigrad.train", "minigrad.decoding"])
def test_public_names_have_docstrings(module_name):
    assert _undocumented(module_name) == []
