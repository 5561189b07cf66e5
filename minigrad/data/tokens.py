"""Character tokens for text classification, and a choice between words and characters.

Word tokens (``minigrad.data.words.tokenize``) suit English. Languages that glue particles and
endings onto words, such as Korean (``정부가``, ``정부는``, ``정부의`` are one noun with three
particles), give a word vocabulary that explodes and leaves most test words unknown. There,
characters work better: a Hangul syllable block is one character after NFC normalisation, so a
few thousand ids cover almost any Korean text.

- ``char_tokenize(text)``: one token per character (lowercased, HTML removed, every run of
  whitespace one ``" "`` token), ready for the same ``Vocab`` as words.
- ``script_share(texts)``: the share of letters written in Hangul, Kana, Han or Thai.
- ``choose_tokens(texts)``: ``"chars"`` when that share is large, else ``"words"``.
- ``get_tokenizer("words" | "chars")``: the tokenizer function of that kind.
- ``ngram_tokens(tokens, n)``: for each position, the n-gram of tokens ending there, so a
  model can add an n-gram embedding to each character's embedding (subword pieces).
"""
from __future__ import annotations

import html
import re
import unicodedata
from typing import Callable, Iterable, Sequence

from minigrad.data.words import tokenize

__all__ = ["char_tokenize", "script_share", "choose_tokens", "get_tokenizer", "ngram_tokens",
           "TOKEN_KINDS"]

TOKEN_KINDS = ("words", "chars")

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")
# code point ranges of scripts whose "words" (space-separated units) are poor tokens
_CHAR_SCRIPTS = (
    (0x1100, 0x11FF),    # Hangul Jamo
    (0x3040, 0x30FF),    # Hiragana, Katakana
    (0x3130, 0x318F),    # Hangul compatibility Jamo
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xAC00, 0xD7A3),    # Hangul syllables
    (0x0E00, 0x0E7F),    # Thai
)


def char_tokenize(text: str, lowercase: bool = True) -> list[str]:
    """The characters of ``text`` as tokens.

    HTML tags are removed and entities decoded, the text is NFC-normalised (so decomposed
    Hangul jamo become one syllable), lowercased unless ``lowercase=False``, and every run of
    whitespace becomes a single ``" "`` token (none at the ends).

    >>> char_tokenize("정부가 <br />OK!")
    ['정', '부', '가', ' ', 'o', 'k', '!']
    """
    text = html.unescape(_TAG.sub(" ", text))
    text = unicodedata.normalize("NFC", text)
    if lowercase:
        text = text.lower()
    return list(_SPACE.sub(" ", text).strip())


def _is_char_script(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CHAR_SCRIPTS)


def script_share(texts: Iterable[str], max_chars: int = 200_000) -> float:
    """The share of letters (Unicode category L*) in ``texts`` that belong to Hangul, Kana,
    Han (CJK) or Thai; at most ``max_chars`` characters are looked at. 0.0 without letters."""
    letters = hits = seen = 0
    for text in texts:
        for ch in text:
            seen += 1
            if unicodedata.category(ch).startswith("L"):
                letters += 1
                hits += _is_char_script(ch)
        if seen >= max_chars:
            break
    return hits / letters if letters else 0.0


def choose_tokens(texts: Iterable[str], threshold: float = 0.3) -> str:
    """``"chars"`` when at least ``threshold`` of the letters are Hangul, Kana, Han or Thai
    (see ``script_share``), else ``"words"``."""
    return "chars" if script_share(texts) >= threshold else "words"


def get_tokenizer(kind: str) -> Callable[[str], list[str]]:
    """``tokenize`` for ``"words"``, ``char_tokenize`` for ``"chars"``."""
    if kind == "words":
        return tokenize
    if kind == "chars":
        return char_tokenize
    raise ValueError(f"get_tokenizer: kind must be one of {TOKEN_KINDS}, got {kind!r}")


def ngram_tokens(tokens: Sequence[str], n: int = 2, boundary: str = "\x02") -> list[str]:
    """For each position ``t``, the ``n`` tokens ending at ``t`` joined into one string (one
    per position, aligned with ``tokens``); positions before the start are ``boundary``.

    >>> ngram_tokens(["정", "부", "가"], 2)
    ['\\x02정', '정부', '부가']
    """
    if n < 1:
        raise ValueError(f"ngram_tokens: n must be >= 1, got {n}")
    padded = [boundary] * (n - 1) + list(tokens)
    return ["".join(padded[t:t + n]) for t in range(len(tokens))]
