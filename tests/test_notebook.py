"""examples/notebooks/rnn_lecture.ipynb is stored without outputs and runs from top to bottom
in a real Jupyter kernel (nbclient + ipykernel), producing the lecture's results."""
import json
import os
import re
from pathlib import Path

import pytest

NOTEBOOK = (Path(__file__).resolve().parent.parent / "examples" / "notebooks"
            / "rnn_lecture.ipynb")


def _text(cell):
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"])
        for value in out.get("data", {}).values():
            parts.append(value if isinstance(value, str) else json.dumps(value))
    return "".join(parts)


def test_notebook_is_stored_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_notebook_runs_in_a_kernel(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    root = str(NOTEBOOK.parent.parent.parent)
    # the kernel is a child process: it finds this checkout through PYTHONPATH
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()          # raises CellExecutionError if any cell fails
    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = "\n".join(_text(c) for c in code)
    assert "predicts 'ello' from 'hell'" in outputs
    grads = [line for line in outputs.splitlines() if "largest |engine - hand|" in line]
    assert len(grads) == 5 and all(float(line.split("=")[1]) < 1e-10 for line in grads)
    assert "gradcheck against central differences: True" in outputs
    graph = next(c for c in code if "mg.viz.draw" in c.source)
    shown = graph.outputs[0]["data"]
    assert "image/svg+xml" in shown or ("digraph" in shown["text/plain"]
                                        and "not installed" in shown["text/plain"])
    pictures = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 2        # the vanishing-gradient plot and the loss curves
    for cell in ("LSTM", "GRU"):
        # the progress bar's last line (stderr) may arrive after the result (stdout) is printed
        found = re.search(rf"{cell}: validation ([0-9.]+) bits", outputs)
        assert found, f"no {cell} validation line"
        assert float(found.group(1)) < 4.5    # bits/char; uniform over ~90 characters is 6.5
    assert outputs.count("sample: 'The ") == 2
    assert "Attention" in "".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "weight on the padded steps: [0. 0.]" in outputs
    assert "each row sums to [1. 1.]" in outputs
    assert "largest gradient reaching the padded keys: 0.0" in outputs


def test_progress_bars_come_from_tqdm_auto(monkeypatch):
    """fit's bar and the examples' bar are tqdm.auto's, which draws a widget in Jupyter and
    text in a terminal."""
    import sys
    import types

    import numpy as np

    import minigrad as mg
    import minigrad.nn as nn
    import minigrad.nn.functional as F
    from minigrad import optim
    from minigrad.train import fit

    made = []

    class FakeBar:
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            self.n = 0

        def update(self, n=1):
            self.n += n

        def set_postfix(self, *args, **kwargs):
            pass

        def write(self, text):
            pass

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "tqdm.auto", types.SimpleNamespace(tqdm=FakeBar))
    model = nn.Linear(2, 1)
    data = [(np.ones((4, 2), np.float32), np.zeros(4, np.float32))] * 3
    fit(model, data, lambda m, b: F.mse_loss(m(mg.tensor(b[0])).reshape(-1), mg.tensor(b[1])),
        optim.SGD(model.parameters(), lr=0.1), epochs=1, log=None)
    assert len(made) == 1 and made[0]["total"] == 3
    examples = str(NOTEBOOK.parent.parent)
    monkeypatch.syspath_prepend(examples)
    from _common import Progress
    with Progress(5, desc="x") as bar:
        bar.update(2)
    assert len(made) == 2 and made[1]["total"] == 5
