"""Graph drawing: ``to_dot`` turns the graph behind a tensor into Graphviz DOT text, ``render``
runs the ``dot`` program (when installed) to write an SVG or PNG image."""
from __future__ import annotations

import os
import shutil
import subprocess

from minigrad.tensor import Tensor

_FORMATS = ("svg", "png")


def _quote(text: str) -> str:
    """A DOT string literal; real newlines become DOT's centred line breaks."""
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + text + '"'


def _tensor_label(t: Tensor) -> str:
    kind = "leaf" if t.is_leaf else "op output"
    head = f"{t.name}: {kind}" if t.name else kind
    grad = "requires_grad" if t.requires_grad else "no grad"
    return f"{head}\n{tuple(t.shape)} {t.dtype}\n{grad}"


def to_dot(tensor: Tensor, name: str = "minigrad") -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    Tensors are ellipses labelled with shape, dtype and whether they require grad (leaves
    that require grad are filled light blue, constants grey, the output yellow); ops are boxes
    labelled with the op name. Edges run from inputs to ops to outputs. Iterative, so deep
    graphs are fine."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(tensor).__name__}")
    lines = [f"digraph {_quote(name)} {{", "  rankdir=BT;",
             '  node [fontname="Helvetica", fontsize=10];']
    seen_t: set[int] = set()
    seen_op: set[int] = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen_t:
            continue
        seen_t.add(id(t))
        if t is tensor:
            style = 'style=filled, fillcolor="#fff2a8"'
        elif t.is_leaf:
            style = 'style=filled, fillcolor="#cfe8ff"' if t.requires_grad else \
                'style=filled, fillcolor="#e6e6e6"'
        else:
            style = ""
        kind = "leaf" if t.is_leaf else "op_output"
        lines.append(f"  t{id(t)} [shape=ellipse, label={_quote(_tensor_label(t))}, "
                     f"tooltip={_quote(kind)}{', ' + style if style else ''}];")
        ctx = t._ctx
        if ctx is None:
            continue
        lines.append(f"  op{id(ctx)} -> t{id(t)};")
        if id(ctx) in seen_op:
            continue
        seen_op.add(id(ctx))
        lines.append(f"  op{id(ctx)} [shape=box, style=\"rounded,filled\", "
                     f"fillcolor=\"#ffd9b3\", label={_quote(ctx.op)}];")
        for parent in ctx.parents:
            if parent is not None:
                lines.append(f"  t{id(parent)} -> op{id(ctx)};")
                stack.append(parent)
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(tensor: Tensor, path: str, format: str = "svg") -> str:
    """Draw the graph of ``tensor`` into ``path`` with Graphviz's ``dot``; returns the path."""
    if format not in _FORMATS:
        raise ValueError(f"render: format must be one of {_FORMATS}, got {format!r}")
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("render: the Graphviz 'dot' program is not installed; install "
                           "graphviz (e.g. `apt-get install graphviz`) to draw images. "
                           "to_dot(tensor) still works without it and returns DOT text.")
    source = to_dot(tensor)
    result = subprocess.run([dot, f"-T{format}", "-o", os.fspath(path)], input=source.encode(),
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"render: dot failed ({result.returncode}): "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return os.fspath(path)
