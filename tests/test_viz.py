"""minigrad.viz: to_dot names every op and tensor (shape, dtype, requires_grad, leaf or op
output); render draws with Graphviz's dot, or says clearly how to get it."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import minigrad as mg
from minigrad import Tensor, viz


def small_graph():
    x = Tensor(np.ones((2, 3)), requires_grad=True, name="x")
    w = Tensor(np.ones((3, 4), dtype=np.float32), requires_grad=True, name="w")
    c = Tensor(np.ones(4, dtype=np.float32), name="const")
    h = (x.float() @ w + c).tanh()
    return x, w, c, (h * h).sum()


def test_to_dot_lists_ops_tensors_and_edges():
    x, w, c, loss = small_graph()
    dot = viz.to_dot(loss)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    ops = re.findall(r'shape=box[^\]]*label="([^"]+)"', dot)
    assert sorted(ops) == sorted(["cast", "matmul", "add", "tanh", "mul", "sum"])
    assert r'label="x: leaf\n(2, 3) float64\nrequires_grad"' in dot
    assert r'label="w: leaf\n(3, 4) float32\nrequires_grad"' in dot
    assert r'label="const: leaf\n(4,) float32\nno grad"' in dot
    assert r'label="op output\n(2, 4) float32\nrequires_grad"' in dot
    # h is read twice by mul: one node, two edges into the mul op
    mul_id = re.search(r'(op\d+) \[shape=box[^\]]*label="mul"', dot).group(1)
    assert len(re.findall(rf"t\d+ -> {mul_id};", dot)) == 2
    # every edge endpoint is a declared node
    declared = set(re.findall(r"^\s+((?:t|op)\d+) \[", dot, re.M))
    for a, b in re.findall(r"((?:t|op)\d+) -> ((?:t|op)\d+);", dot):
        assert a in declared and b in declared


def test_to_dot_handles_deep_graphs_and_quotes():
    x = Tensor(np.ones(1), requires_grad=True, name='say "hi"')
    y = x
    for _ in range(3000):
        y = y * 1.0
    dot = viz.to_dot(y)
    assert dot.count('label="mul"') == 3000
    assert r'say \"hi\": leaf' in dot
    with pytest.raises(TypeError, match="to_dot: expected a Tensor"):
        viz.to_dot(np.ones(2))


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_render_writes_an_image_or_explains_how_to_get_dot(tmp_path, fmt):
    *_, loss = small_graph()
    path = tmp_path / f"graph.{fmt}"
    if shutil.which("dot") is None:
        with pytest.raises(RuntimeError, match=r"apt-get install graphviz.*to_dot"):
            viz.render(loss, str(path), format=fmt)
        assert not path.exists()
    else:
        assert viz.render(loss, str(path), format=fmt) == str(path)
        head = path.read_bytes()[:200]
        assert (b"<svg" in head) if fmt == "svg" else head.startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="render: format must be one of"):
        viz.render(loss, str(path), format="pdf")


def test_minigrad_viz_is_reachable_from_the_package():
    assert mg.viz.to_dot is viz.to_dot


# ---- notebooks: a Graph shows itself (SVG through the graphviz package, or a clear note) ----
FAKE_DOT = """#!{python}
import sys
source = sys.stdin.buffer.read().decode()
fmt = [a for a in sys.argv[1:] if a.startswith("-T")]
assert fmt == ["-Tsvg"], sys.argv
ops = source.count("shape=box")
sys.stdout.write('<?xml version="1.0"?>\\n<svg xmlns="http://www.w3.org/2000/svg">'
                 f'<text>{{ops}} ops, {{len(source)}} bytes</text></svg>\\n')
"""


def _fake_dot(tmp_path, monkeypatch):
    """A stand-in `dot` on PATH that answers with an SVG describing the DOT it was given."""
    import sys
    folder = tmp_path / "bin"
    folder.mkdir()
    exe = folder / "dot"
    exe.write_text(FAKE_DOT.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    assert shutil.which("dot") == str(exe)


def test_graph_displays_as_svg_through_graphviz_when_dot_is_present(tmp_path, monkeypatch):
    pytest.importorskip("graphviz")
    _fake_dot(tmp_path, monkeypatch)
    *_, loss = small_graph()
    g = viz.draw(loss)
    assert g.source == viz.to_dot(loss)
    svg = g._repr_svg_()
    assert svg.startswith("<?xml") and f"6 ops, {len(g.source)} bytes" in svg
    bundle = g._repr_mimebundle_()
    assert bundle["image/svg+xml"] == svg and "Graph of a () tensor" in bundle["text/plain"]
    g.render(tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text() == svg
    assert viz.render(loss, str(tmp_path / "r.svg")) == str(tmp_path / "r.svg")


def test_graph_without_dot_shows_dot_text_and_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    *_, loss = small_graph()
    g = viz.draw(loss)
    assert g._repr_svg_() is None
    bundle = g._repr_mimebundle_()
    assert set(bundle) == {"text/plain"}
    text = bundle["text/plain"]
    assert "dot' program is not installed" in text and "apt-get install graphviz" in text
    assert text.endswith(g.source) and 'label="tanh"' in text
    with pytest.raises(RuntimeError, match="not installed"):
        g.svg()

