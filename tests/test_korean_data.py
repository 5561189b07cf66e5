"""The Korean constitution by chapter (minigrad.data.korean), read from the text file inside the
konlpy package, and examples/classify.py's --dataset kolaw on it."""
import importlib
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from minigrad.data import (KONLPY_INSTALL_HINT, constitution_chapters, constitution_txt,
                           load_constitution_chapters)

HAS_KONLPY = importlib.util.find_spec("konlpy") is not None
needs_konlpy = pytest.mark.skipif(not HAS_KONLPY, reason="konlpy (the data) is not installed")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@needs_konlpy
def test_constitution_paragraphs_by_chapter():
    data = constitution_chapters()
    assert data.classes[:3] == ["총강", "국민의 권리와 의무", "국회"] and len(data.classes) == 10
    assert data.classes[-1] == "헌법개정"
    assert len(data) == 319 and len(data.labels) == 319
    counts = data.class_counts()
    assert counts["정부"] == 91 and counts["지방자치"] == 4 and sum(counts.values()) == 319
    # chapter labels never go back: the file is read in order
    assert np.all(np.diff(data.labels) >= 0)
    assert data.texts[0] == "대한민국은 민주공화국이다."
    # no article number or clause mark left to give the chapter away, no heading, no 부칙
    assert not any(re.match(r"제\s*\d+\s*조|[\u2460-\u2473]|제\s*\d+\s*[장절]", t)
                   for t in data.texts)
    assert all(t and "부칙" not in t.split() for t in data.texts)
    # the last paragraph of chapter 10, not the supplementary provisions after it
    assert data.texts[-1].startswith("헌법개정안이 제2항의 찬성을 얻은 때에는")


@needs_konlpy
def test_constitution_split_is_seeded_and_stratified():
    a, b = load_constitution_chapters(seed=3), load_constitution_chapters(seed=3)
    assert a.test.texts == b.test.texts
    assert len(a.train) + len(a.val) + len(a.test) == 319
    assert set(a.train.labels) == set(range(10))          # every chapter in training
    assert load_constitution_chapters(seed=4).test.texts != a.test.texts


def test_missing_konlpy_names_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "konlpy" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="konlpy") as e:
        constitution_txt()
    assert KONLPY_INSTALL_HINT in str(e.value)


@needs_konlpy
def test_classify_runs_on_kolaw(tmp_path, capsys):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    r = importlib.import_module("classify").main(
        ["--dataset", "kolaw", "--epochs", "2", "--embed", "8", "--hidden", "8",
         "--ensemble", "1", "--baseline", "none", "--no-progress", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert r["tokens"] == "chars" and r["preset"] == "small"
    assert "kolaw constitution: train 224, validation 32, test 63" in out
    assert len(r["test_predictions"]) == 63 and r["test_probabilities"].shape == (63, 10)
    assert np.allclose(r["test_probabilities"].sum(axis=1), 1.0)
