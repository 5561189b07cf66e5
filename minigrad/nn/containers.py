"""Containers that register the modules they hold: ModuleList (a list) and ModuleDict (a dict).

A plain Python list of layers assigned to a Module is just an attribute: its layers' parameters
are not found by ``parameters()``, ``state_dict()`` or an optimizer. Put them in a ModuleList
(children named "0", "1", ..., so a state_dict key reads ``layers.0.weight``, as PyTorch) or
a ModuleDict (children named by their keys).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from minigrad.nn.module import Module

__all__ = ["ModuleList", "ModuleDict"]


def _check_module(owner: str, key: Any, module: Any) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"{owner}: entry {key!r} is a {type(module).__name__}, not a Module")


def _put(owner: Module, name: str, module: Module) -> None:
    """Register ``module`` as child ``name``; a replaced child keeps its place in the order
    (``setattr`` would move it to the end)."""
    owner._modules[name] = module
    object.__setattr__(owner, name, module)


class ModuleList(Module):
    """A list of modules whose parameters belong to the owner (as ``torch.nn.ModuleList``).

    Supports indexing (negative indices, slices give a new ModuleList), ``len``, iteration,
    ``append``, ``extend``, ``insert``, item assignment and ``del``; after an insertion or a
    deletion the children are renumbered 0..n-1, as PyTorch. It has no ``forward``: iterate over
    it in the owner's forward."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx: int) -> int:
        n = len(self)
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise TypeError(f"ModuleList: indices must be integers or slices, got "
                            f"{type(idx).__name__}")
        if not -n <= idx < n:
            raise IndexError(f"ModuleList: index {idx} is out of range for {n} modules")
        return idx % n

    def _renumber(self, mods: list[Module]) -> None:
        for name in list(self._modules):
            delattr(self, name)
        for i, m in enumerate(mods):
            self.add_module(str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __getitem__(self, idx: int | slice) -> Any:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(mods[idx])
        return mods[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        i = self._index(idx)
        _check_module("ModuleList", i, module)
        _put(self, str(i), module)

    def __delitem__(self, idx: int | slice) -> None:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[self._index(idx)]
        self._renumber(mods)

    def __iadd__(self, modules: Iterable[Module]) -> "ModuleList":
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> "ModuleList":
        return ModuleList([*self, *other])

    def append(self, module: Module) -> "ModuleList":
        """Add ``module`` at the end (named ``str(len(self))``)."""
        _check_module("ModuleList", len(self), module)
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        """Append every module of an iterable."""
        if isinstance(modules, (Module, Mapping)) and not isinstance(modules, ModuleList):
            raise TypeError(f"ModuleList.extend: expected an iterable of Modules, got "
                            f"{type(modules).__name__}")
        for m in list(modules):
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` and renumber."""
        _check_module("ModuleList", index, module)
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._renumber(mods)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward: iterate over it, e.g. "
                                  "`for layer in self.layers: x = layer(x)`")


class ModuleDict(Module):
    """A dict of modules whose parameters belong to the owner (as ``torch.nn.ModuleDict``);
    keys keep their insertion order and become the children's names (``heads.en.weight``).

    Keys must be non-empty strings without a ".", and may not shadow an attribute of
    ModuleDict itself (such as "keys" or "training")."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None
                 = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _check_key(self, key: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {type(key).__name__}")
        if not key or "." in key:
            raise KeyError(f"ModuleDict: key {key!r} must be non-empty and contain no '.'")
        if key not in self._modules and hasattr(self, key):
            raise KeyError(f"ModuleDict: key {key!r} would shadow the attribute of that name")

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r} (keys: {list(self._modules)})")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self._check_key(key)
        _check_module("ModuleDict", key, module)
        _put(self, key, module)

    def __delitem__(self, key: str) -> None:
        self[key]  # noqa: B018 (raises the KeyError that names the keys)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> list[str]:
        """The keys, in insertion order."""
        return list(self._modules.keys())

    def values(self) -> list[Module]:
        """The modules, in insertion order."""
        return list(self._modules.values())

    def items(self) -> list[tuple[str, Module]]:
        """(key, module) pairs, in insertion order."""
        return list(self._modules.items())

    def pop(self, key: str) -> Module:
        """Remove ``key`` and return its module."""
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        """Remove every module."""
        for key in self.keys():
            del self[key]

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add (or replace) entries from a mapping or from (key, module) pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for entry in pairs:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
                raise TypeError(f"ModuleDict.update: expected a mapping or (key, module) pairs, "
                                f"got the entry {entry!r}")
            self[entry[0]] = entry[1]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward: pick a module by key, e.g. "
                                  "`self.heads['en'](x)`")

