"""Graph drawing: ``to_dot`` turns the graph behind a tensor into Graphviz DOT text, ``render``
runs the ``dot`` program (when installed) to write an SVG or PNG image, and ``draw`` returns a
``Graph`` that shows itself in a Jupyter notebook.

Images come from the ``graphviz`` Python package (extra ``viz``: ``pip install graphviz``),
which runs Graphviz's ``dot`` program; the program itself comes from the system
(``apt-get install graphviz``, ``brew install graphviz``, ``conda install graphviz``). Without
either, ``to_dot`` still works and a ``Graph`` shows its DOT text with a note saying what to
install."""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

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


_NO_DOT = ("the Graphviz 'dot' program is not installed; install graphviz (e.g. `apt-get "
           "install graphviz`) to draw images. to_dot(tensor) still works without it and "
           "returns DOT text.")


def _pipe(source: str, format: str) -> bytes:
    """``source`` drawn by dot in ``format``: through the graphviz package when installed,
    else by running ``dot`` directly. RuntimeError with a clear message when dot is missing."""
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(_NO_DOT)
    try:
        import graphviz
    except ImportError:
        graphviz = None
    if graphviz is not None:
        try:
            return graphviz.Source(source).pipe(format=format)
        except graphviz.ExecutableNotFound:
            raise RuntimeError(_NO_DOT) from None
        except graphviz.CalledProcessError as exc:
            detail = exc.stderr.decode(errors="replace").strip() if exc.stderr else exc
            raise RuntimeError(f"dot failed ({exc.returncode}): {detail}") from None
    result = subprocess.run([dot, f"-T{format}"], input=source.encode(), capture_output=True,
                            check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dot failed ({result.returncode}): "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def render(tensor: Tensor, path: str, format: str = "svg") -> str:
    """Draw the graph of ``tensor`` into ``path`` with Graphviz's ``dot``; returns the path."""
    if format not in _FORMATS:
        raise ValueError(f"render: format must be one of {_FORMATS}, got {format!r}")
    try:
        image = _pipe(to_dot(tensor), format)
    except RuntimeError as exc:
        raise RuntimeError(f"render: {exc}") from None
    with open(os.fspath(path), "wb") as f:
        f.write(image)
    return os.fspath(path)


class Graph:
    """The graph behind a tensor, for notebooks: Jupyter shows it as an SVG drawn by Graphviz
    when ``dot`` is installed, else as its DOT text with a note saying what to install.

    ``source`` is the DOT text; ``svg()`` the drawing (RuntimeError without dot);
    ``render(path, format)`` writes a file."""

    def __init__(self, tensor: Tensor, name: str = "minigrad") -> None:
        self.source = to_dot(tensor, name)
        self._tensor_shape = tuple(tensor.shape)

    def svg(self) -> str:
        """The drawing as SVG text."""
        return _pipe(self.source, "svg").decode("utf-8")

    def render(self, path: str | os.PathLike, format: str = "svg") -> str:
        """Write the drawing to ``path`` (svg or png); returns the path."""
        if format not in _FORMATS:
            raise ValueError(f"Graph.render: format must be one of {_FORMATS}, got {format!r}")
        with open(os.fspath(path), "wb") as f:
            f.write(_pipe(self.source, format))
        return os.fspath(path)

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except RuntimeError:
            return None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        try:
            return {"image/svg+xml": self.svg(), "text/plain": repr(self)}
        except RuntimeError as exc:
            return {"text/plain": f"(no drawing: {exc})\n\n{self.source}"}

    def __repr__(self) -> str:
        nodes = self.source.count("[shape=")
        return f"<minigrad.viz.Graph of a {self._tensor_shape} tensor: {nodes} nodes>"


def draw(tensor: Tensor, name: str = "minigrad") -> Graph:
    """A ``Graph`` of everything that produced ``tensor``; the last line of a notebook cell
    ``draw(loss)`` displays it."""
    return Graph(tensor, name)
