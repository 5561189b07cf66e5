"""A labelled Korean text set that needs no network: the paragraphs of the Constitution of the
Republic of Korea, labelled by chapter, read from the text file that the ``konlpy`` package
ships (``konlpy/data/corpus/kolaw/constitution.txt``; located without importing konlpy, so
no Java is needed).

- ``constitution_txt()``: the path of that file.
- ``constitution_chapters()``: its 319 paragraphs (articles and their clauses, without the
  article numbers and clause marks) with the chapter each belongs to (10 chapters: 총강,
  국민의 권리와 의무, 국회, 정부, ...), a small topic-classification task in formal Korean
  (the preamble and the supplementary provisions, 부칙, are left out).
- ``load_constitution_chapters(val_fraction, test_fraction, seed)``: the same, split.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np

from minigrad.data.datasets import Splits, TextClassificationData, read_text, split_dataset

__all__ = ["KONLPY_INSTALL_HINT", "constitution_txt", "constitution_chapters",
           "load_constitution_chapters"]

KONLPY_INSTALL_HINT = ('install it with:  pip install "minigrad-rnn[korean]"   '
                       '(or:  pip install konlpy)')
_CHAPTER = re.compile(r"제\s*(\d+)\s*장\s*(.+)")
_SECTION = re.compile(r"제\s*\d+\s*절")
_NUMBER = re.compile(r"^(제\s*\d+\s*조(의\s*\d+)?\s*)?[\u2460-\u2473]?")   # 제12조 ③


def constitution_txt() -> Path:
    """Path of ``konlpy/data/corpus/kolaw/constitution.txt`` from the installed ``konlpy``
    package (found without importing it)."""
    spec = importlib.util.find_spec("konlpy")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the konlpy package (which ships the Korean constitution "
                                  "text) is not installed; " + KONLPY_INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "corpus" / "kolaw" / "constitution.txt"
        if path.is_file():
            return path
    raise FileNotFoundError("konlpy is installed but data/corpus/kolaw/constitution.txt is "
                            "missing; reinstall it: " + KONLPY_INSTALL_HINT)


def constitution_chapters() -> TextClassificationData:
    """Each non-empty line between the first chapter heading and the supplementary provisions
    (an article's first clause or a further clause), its ``제N조`` number and clause mark
    ``①`` removed, labelled with its chapter's title (classes in chapter order)."""
    path = constitution_txt()
    texts, chapters, titles = [], [], []
    for line in read_text(path).splitlines():
        s = " ".join(line.split())
        if not s:
            continue
        m = _CHAPTER.fullmatch(s)
        if m:
            titles.append(m.group(2))
            continue
        if "부칙" in s.split():   # the supplementary provisions ("펼침  부칙 <...>")
            break
        if titles and not _SECTION.match(s):
            # without the article number and clause mark, which would give the chapter away
            texts.append(_NUMBER.sub("", s).strip())
            chapters.append(len(titles) - 1)
    if len(titles) < 2 or not texts:
        raise ValueError(f"constitution_chapters: found {len(titles)} chapter headings and "
                         f"{len(texts)} paragraphs in {str(path)!r}; not the expected file")
    return TextClassificationData(texts, np.array(chapters, dtype=np.int64), titles)


def load_constitution_chapters(val_fraction: float = 0.1, test_fraction: float = 0.2,
                               seed: int = 0) -> Splits:
    """``constitution_chapters()`` split with a fixed seed, stratified by chapter."""
    return split_dataset(constitution_chapters(), val_fraction, test_fraction, seed)
