"""The README's "Coming from Keras" recipes run as written (their code blocks, in order, in one
namespace), and what they compute is checked here against independent numpy computations."""
from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def keras_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Coming from Keras")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_keras_section_has_every_recipe():
    code = "\n".join(keras_blocks())
    for name in ("nn.Linear", "nn.RNN", "bidirectional=True", "return_sequences", "return_state",
                 "lengths=", "fit(", "cross_entropy"):
        assert name in code, name
    assert len(keras_blocks()) == 5


def test_keras_recipes_run_and_compute_what_they_say():
    import minigrad as mg
    mg.manual_seed(0)
    np.random.seed(0)
    namespace: dict = {"__name__": "readme_keras"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for k, block in enumerate(keras_blocks()):
            exec(compile(block, f"README.md keras block {k}", "exec"), namespace)
    # the masked mean equals the mean over each row's real steps
    output, lengths, pooled = namespace["output"], namespace["lengths"], namespace["pooled"]
    expected = np.stack([output.data[i, :n].mean(axis=0)
                         for i, n in enumerate(np.asarray(lengths.data))])
    np.testing.assert_allclose(pooled.data, expected, rtol=1e-5, atol=1e-6)
    # fit trained: five epochs recorded, the loss went down on the repeated batch
    history = namespace["history"]
    assert len(history["train_loss"]) == 5 and len(history["val_loss"]) == 5
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert "[" in out.getvalue()  # the block's print of the history ran
