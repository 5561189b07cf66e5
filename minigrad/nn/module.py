"""Module and Parameter: the containers that hold a model's weights (as torch.nn.Module)."""
from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from minigrad.tensor import Tensor


class StateDictError(KeyError, RuntimeError):
    """load_state_dict found missing, unexpected or wrongly-shaped keys (message lists them).

    A KeyError (as before) and a RuntimeError (as PyTorch); printed without KeyError's quotes."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Parameter(Tensor):
    """A Tensor that is a model weight: requires grad, and is found by Module.parameters()."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer. Assigning a Parameter or a Module as an attribute registers it.

    Subclasses implement ``forward``; calling the module calls it."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attribute {name!r}")
        params, modules = self.__dict__["_parameters"], self.__dict__["_modules"]
        params.pop(name, None)
        modules.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        elif _holds_modules(value):
            warnings.warn(f"{type(self).__name__}.{name}: a plain {type(value).__name__} of "
                          f"modules does not register their parameters; use nn.ModuleList "
                          f"(or nn.ModuleDict)", stacklevel=2)
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name``; None records an absent optional weight."""
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: "Module") -> None:
        """Register ``module`` as a child under ``name`` (the same as ``setattr``)."""
        setattr(self, name, module)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation of this module; subclasses define it, ``module(x)`` calls it."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---- traversal -----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module and every module inside it."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        """This module and every module inside it."""
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        """The direct child modules."""
        yield from self._modules.values()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) for every parameter, each once (PyTorch's names)."""
        seen: set[int] = set()
        for mod_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter of this module and its children, each once."""
        for _, p in self.named_parameters():
            yield p

    # ---- modes and gradients --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (dropout active) on this module and its children."""
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (dropout off): ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (``.grad = None``)."""
        for p in self.parameters():
            p.grad = None

    # ---- state -----------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Name -> a copy of each parameter's array (PyTorch's names)."""
        return OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list, list]:
        """Copy arrays into the parameters. With strict, missing, unexpected and wrongly-shaped
        keys are all listed in one error (wrong shapes are an error even without strict).
        Returns (missing_keys, unexpected_keys)."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [f"{k}: checkpoint {tuple(np.shape(_array(state[k])))} vs model {own[k].shape}"
                 for k in own if k in state and tuple(np.shape(_array(state[k]))) != own[k].shape]
        if wrong or (strict and (missing or unexpected)):
            parts = []
            if missing:
                parts.append(f"missing keys: {missing}")
            if unexpected:
                parts.append(f"unexpected keys: {unexpected}")
            if wrong:
                parts.append(f"wrongly-shaped keys: {wrong}")
            source = getattr(state, "source", None)  # set by minigrad.load
            where = f" (from checkpoint {source!r})" if source else ""
            raise StateDictError(f"{type(self).__name__}.load_state_dict{where}: "
                                 + "; ".join(parts))
        for k, p in own.items():
            if k in state:
                p.data = np.array(_array(state[k]), dtype=p.data.dtype, order="C", copy=True)
        return missing, unexpected

    # ---- dtype and size ----------------------------------------------------------------------
    def to(self, dtype: Any) -> "Module":
        """Convert every parameter (and its gradient) to ``dtype``, in place; returns self. An
        optimizer's state follows at its next step (``Optimizer._state``)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: parameters must stay floating point, "
                            f"got dtype {dtype}")
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:
                p.grad = p.grad.astype(dtype)
        return self

    def double(self) -> "Module":
        """Convert every parameter to float64 (``to(np.float64)``)."""
        return self.to(np.float64)

    def float(self) -> "Module":
        """Convert every parameter to float32 (``to(np.float32)``)."""
        return self.to(np.float32)

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the model learns (``sum(p.numel())``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's repr (subclasses add their settings)."""
        return ""

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(m).replace("\n", "\n  ")
                 for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + (")" if not lines else "\n" + "\n".join(lines) + "\n)")


def check_input_dtype(name: str, x: Tensor, dtype: Any) -> None:
    """Layers never upcast silently (as torch): an input of another dtype than the parameters
    is a TypeError that says how to convert."""
    if x.dtype != dtype:
        raise TypeError(f"{name}: input dtype {x.dtype} differs from the parameters' dtype "
                        f"{np.dtype(dtype)}; convert one of them (x.float() or layer.double())")


def _holds_modules(value: Any) -> bool:
    """A list, tuple or dict with a Module among its entries (which setattr won't register)."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return False
    return any(isinstance(v, Module) for v in value)


def _array(value: Any) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)
