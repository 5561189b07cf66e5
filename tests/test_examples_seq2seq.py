"""Smoke tests of examples/seq2seq.py and examples/captioning.py with tiny settings (seconds):
--help, training that lowers the loss, scores in range, greedy and beam results, plots."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("babel")
pytest.importorskip("num2words")
pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


@pytest.mark.parametrize("name", ["seq2seq", "captioning"])
def test_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        example(name).main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage:" in out and "--seed" in out and "--beam" in out


def _plots_ok(r):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return r.get("plot") is None
    return r.get("plot") is not None and Path(r["plot"]).stat().st_size > 0


@pytest.mark.parametrize("task", ["dates", "numbers"])
def test_seq2seq_tiny(task, tmp_path, capsys):
    r = example("seq2seq").main([
        "--task", task, "--pairs", "400", "--epochs", "4", "--lr", "0.01", "--hidden", "32", "--embed", "8",
        "--batch-size", "32", "--beam", "2", "--beam-pairs", "10", "--plots", "1",
        "--show", "2", "--out", str(tmp_path), "--no-progress",
        "--cell", "lstm" if task == "numbers" else "gru"])
    loss = r["history"]["loss"]
    assert np.mean(loss[-3:]) < 0.7 * np.mean(loss[:3])
    for key in ("greedy_exact", "beam_exact"):
        assert 0.0 <= r[key] <= 1.0
    assert len(r["examples"]) == 2 and _plots_ok(r)
    out = capsys.readouterr().out
    assert "test exact match" in out and "beam search" in out


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_captioning_tiny(lang, tmp_path, capsys):
    r = example("captioning").main([
        "--lang", lang, "--strips", "1024", "40", "40", "--epochs", "3", "--lr", "0.01", "--hidden", "48",
        "--features", "32", "--embed", "8", "--batch-size", "32", "--beam", "2",
        "--plots", "2", "--out", str(tmp_path), "--no-progress"])
    loss = r["history"]["loss"]
    assert np.mean(loss[-3:]) < 0.75 * np.mean(loss[:3])
    for key in ("word_accuracy", "exact_match", "beam_word_accuracy", "beam_exact_match"):
        assert 0.0 <= r[key] <= 1.0
    assert _plots_ok(r)
    assert "word accuracy" in capsys.readouterr().out
