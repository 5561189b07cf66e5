"""minigrad.data.pairs: the date, number and digit-strip generators are seeded and
deterministic, and their train / validation / test splits share no pair (no digit image)."""
from __future__ import annotations

import datetime
import re

import numpy as np
import pytest

pytest.importorskip("babel")
pytest.importorskip("num2words")
pytest.importorskip("sklearn")

from minigrad.data import date_pairs, digit_caption, digit_strips, number_pairs  # noqa: E402

WEEKDAYS_KO = "월화수목금토일"


def _all(splits):
    return splits.train + splits.val + splits.test


@pytest.mark.parametrize("make", [lambda s: date_pairs(600, seed=s),
                                  lambda s: number_pairs(600, seed=s)])
def test_pairs_deterministic_and_disjoint(make):
    a, b, c = make(3), make(3), make(4)
    assert _all(a) == _all(b)
    assert _all(a) != _all(c)
    assert (len(a.train), len(a.val), len(a.test)) == (480, 60, 60)
    sources = [set(p[0] for p in part) for part in (a.train, a.val, a.test)]
    targets = [set(p[1] for p in part) for part in (a.train, a.val, a.test)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not sources[i] & sources[j]
            assert not targets[i] & targets[j]


def test_date_pairs_say_the_same_date():
    months = {datetime.date(2000, m, 1).strftime("%B"): m for m in range(1, 13)}
    for en, ko in _all(date_pairs(300, seed=1)):
        m = re.fullmatch(r"(?:(\w+), )?(\w+) (\d+), (\d+)", en)
        assert m, en
        weekday, month, day, year = m.groups()
        month = next(v for k, v in months.items() if k.startswith(month))
        d = datetime.date(int(year), month, int(day))
        expect = f"{d.year}년 {d.month}월 {d.day}일"
        if weekday is not None:
            assert weekday == d.strftime("%A")
            expect += f" {WEEKDAYS_KO[d.weekday()]}요일"
        assert ko == expect


def test_number_pairs_korean_digits_read_back():
    # Korean number words read back to the integer (units 만/천/백/십 and digit names)
    digits = {w: i for i, w in enumerate("영일이삼사오육칠팔구")}
    small = {"천": 1000, "백": 100, "십": 10}

    def read(ko):
        total, group, k = 0, 0, 0
        ko = ko.replace(" ", "")
        if ko == "영":
            return 0
        while k < len(ko):
            ch = ko[k]
            if ch == "만":
                total += (group or 1) * 10000
                group = 0
            elif ch in small:
                group += small[ch]
            else:
                unit = ko[k + 1] if k + 1 < len(ko) and ko[k + 1] in small else None
                group += digits[ch] * (small[unit] if unit else 1)
                k += 1 if unit else 0
            k += 1
        return total + group

    from num2words import num2words
    words = {num2words(v, lang="en"): v for v in range(0, 3000)}
    for en, ko in _all(number_pairs(200, seed=2, high=2999)):
        assert read(ko) == words[en]


def test_digit_strips_use_unseen_images_and_match_their_captions():
    from sklearn.datasets import load_digits
    data = load_digits()
    train, val, test = digit_strips((200, 50, 50), seed=5)
    again = digit_strips((200, 50, 50), seed=5)
    np.testing.assert_array_equal(train.images, again[0].images)
    used = [set(s.sources[s.sources >= 0].tolist()) for s in (train, val, test)]
    assert not used[0] & used[1] and not used[0] & used[2] and not used[1] & used[2]
    for strips in (train, test):
        assert strips.counts.min() >= 3 and strips.counts.max() <= 5
        for img, src, dig, c in zip(strips.images, strips.sources, strips.digits,
                                    strips.counts):
            for slot in range(c):
                np.testing.assert_allclose(img[:, 8 * slot:8 * slot + 8],
                                           data.images[src[slot]] / 16.0, rtol=1e-6)
                assert dig[slot] == data.target[src[slot]]
            assert np.all(img[:, 8 * c:] == 0) and np.all(src[c:] == -1)
    caps = test.captions("ko")
    assert caps[0] == " ".join("영일이삼사오육칠팔구"[d] for d in test.digits[0, :test.counts[0]])
    assert digit_caption([3, 1, 4], "ko") == "삼 일 사"
    assert digit_caption([3, 1, 4]) == "three one four"


def test_bad_arguments():
    with pytest.raises(ValueError, match="date_pairs: fractions"):
        date_pairs(10, fractions=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="date_pairs: formats"):
        date_pairs(10, formats=("short",))
    with pytest.raises(ValueError, match="number_pairs: n"):
        number_pairs(20, high=9)
    with pytest.raises(ValueError, match="digit_caption: lang"):
        digit_caption([1], "fr")
